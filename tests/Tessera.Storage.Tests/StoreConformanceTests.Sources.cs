namespace Tessera.Storage.Tests;

public abstract partial class StoreConformanceTests
{
    [Fact]
    public async Task sources_are_created_listed_and_found_by_id_and_by_write_key()
    {
        var store = await OpenAsync();
        var web = await store.CreateSourceAsync("web", "default", "wk-web", CancellationToken.None);
        var app = await store.CreateSourceAsync("app", "shop", "wk-app", CancellationToken.None);

        var listed = await store.ListSourcesAsync(CancellationToken.None);

        Assert.Equal([web.Id, app.Id], listed.Select(s => s.Id));
        Assert.NotEqual(web.Id, app.Id);
        var found = await store.GetSourceAsync(app.Id, CancellationToken.None);
        Assert.Equal(("app", "shop", "wk-app", false), (found!.Name, found.Workspace, found.WriteKey, found.IsRevoked));
        Assert.True((found.CreatedAt - app.CreatedAt).Duration() < TimeSpan.FromMilliseconds(1));
        Assert.Equal(web.Id, (await store.FindSourceByWriteKeyAsync("wk-web", CancellationToken.None))!.Id);
        Assert.Null(await store.FindSourceByWriteKeyAsync("wk-none", CancellationToken.None));
        Assert.Null(await store.GetSourceAsync("src_none", CancellationToken.None));
    }

    [Fact]
    public async Task a_revoked_source_stays_listed_with_the_time_it_was_revoked()
    {
        var store = await OpenAsync();
        var web = await store.CreateSourceAsync("web", "default", "wk-web", CancellationToken.None);

        Assert.True(await store.RevokeSourceAsync(web.Id, CancellationToken.None));
        var revokedAt = (await store.GetSourceAsync(web.Id, CancellationToken.None))!.RevokedAt;
        Assert.True(await store.RevokeSourceAsync(web.Id, CancellationToken.None));
        Assert.False(await store.RevokeSourceAsync("src_none", CancellationToken.None));

        var found = await store.FindSourceByWriteKeyAsync("wk-web", CancellationToken.None);
        Assert.True(found!.IsRevoked);
        Assert.Equal(revokedAt, found.RevokedAt);
        Assert.Single(await store.ListSourcesAsync(CancellationToken.None));
    }

    [Fact]
    public async Task a_second_source_with_the_same_write_key_is_refused()
    {
        var store = await OpenAsync();
        await store.CreateSourceAsync("web", "default", "wk-web", CancellationToken.None);

        await Assert.ThrowsAsync<StoreException>(() => store.CreateSourceAsync("copy", "default", "wk-web", CancellationToken.None));
        Assert.Single(await store.ListSourcesAsync(CancellationToken.None));
    }
}
