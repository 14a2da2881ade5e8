namespace Tessera.Storage.Tests;

public abstract partial class StoreConformanceTests
{
    [Fact]
    public async Task set_if_absent_keeps_the_first_value_and_returns_it()
    {
        var store = await OpenAsync();

        Assert.Null(await store.GetSettingAsync("admin_token_hash", CancellationToken.None));
        Assert.Equal("first", await store.SetSettingIfAbsentAsync("admin_token_hash", "first", CancellationToken.None));
        Assert.Equal("first", await store.SetSettingIfAbsentAsync("admin_token_hash", "second", CancellationToken.None));
        Assert.Equal("first", await store.GetSettingAsync("admin_token_hash", CancellationToken.None));
    }

    [Fact]
    public async Task settings_survive_reopening_the_store()
    {
        var store = await OpenAsync();
        await store.SetSettingIfAbsentAsync("k", "v", CancellationToken.None);
        await CloseAsync(store);

        var reopened = await OpenAsync();

        Assert.Equal("v", await reopened.GetSettingAsync("k", CancellationToken.None));
    }
}
