using Microsoft.Extensions.Logging;
using Tessera.Storage.Events;

namespace Tessera.Storage.Tests;

public abstract partial class StoreConformanceTests
{
    [Fact]
    public async Task a_database_at_schema_version_1_is_upgraded_in_place_keeping_its_data()
    {
        var old = await OpenAsync(migrateUpTo: 1);
        var source = await old.CreateSourceAsync("web", "default", "wk-web", CancellationToken.None);
        await old.SetSettingIfAbsentAsync("k", "v", CancellationToken.None);
        await CloseAsync(old);
        var oldEvents = new[] { Event("old-1"), Event("old-2", name: "Signed Up") };
        await InsertAtVersion1Async(oldEvents);
        Assert.Equal(1, await SchemaVersionAsync());
        StoreLog.Collector.Clear();

        var store = await OpenAsync();

        Assert.Equal(LatestSchemaVersion, await SchemaVersionAsync());
        // Announced before its first step (a warning: steps can copy whole tables), then each step, then the schema reached.
        var log = StoreLog.Collector.GetSnapshot();
        Assert.Equal(LogLevel.Warning, log[0].Level);
        Assert.Contains($" from schema 1 to {LatestSchemaVersion} (", log[0].Message, StringComparison.Ordinal);
        var steps = log.Where(r => r.Message.StartsWith("Schema step ", StringComparison.Ordinal))
            .Select(r => int.Parse(r.Message.Split(' ')[2], System.Globalization.CultureInfo.InvariantCulture)).ToList();
        Assert.True(steps.Count > 1 && steps[0] > 1 && steps[^1] == LatestSchemaVersion, string.Join("\n", log.Select(r => r.Message)));
        Assert.Equal(steps.Order(), steps);
        Assert.Contains(log, r => r.Message.Contains($" is at schema {LatestSchemaVersion}, upgraded in ", StringComparison.Ordinal));
        Assert.Equal(oldEvents.Reverse(), (await ReadAllAsync(store)).Select(e => e.Message));
        Assert.Equal(source.Id, (await store.FindSourceByWriteKeyAsync("wk-web", CancellationToken.None))!.Id);
        Assert.Equal("v", await store.GetSettingAsync("k", CancellationToken.None));
        Assert.Equal(2, (await store.GetStatsAsync(CancellationToken.None)).Events);
        // Events written before the upgrade still count for dedup, and new ones follow them in the log.
        Assert.Equal(new AppendResult(1, 1), await store.AppendAsync([Event("old-1"), Event("new-1")], CancellationToken.None));
        Assert.Equal("new-1", (await store.QueryAsync(new EventQuery(Limit: 1), CancellationToken.None)).Items[0].Message.MessageId);
        Assert.Equal(3, (await store.GetStatsAsync(CancellationToken.None)).Events);
    }

    [Fact]
    public async Task opening_an_up_to_date_store_again_changes_nothing()
    {
        var store = await OpenAsync();
        // A new store: one line, no upgrade announced.
        var created = Assert.Single(StoreLog.Collector.GetSnapshot());
        Assert.Equal(LogLevel.Information, created.Level);
        Assert.StartsWith("Created the store ", created.Message, StringComparison.Ordinal);
        Assert.EndsWith($" at schema {LatestSchemaVersion}", created.Message, StringComparison.Ordinal);
        await store.AppendAsync(Events(2), CancellationToken.None);
        await CloseAsync(store);
        StoreLog.Collector.Clear();

        var reopened = await OpenAsync();

        Assert.Equal(LatestSchemaVersion, await SchemaVersionAsync());
        Assert.Equal(2, (await reopened.GetStatsAsync(CancellationToken.None)).Events);
        Assert.Empty(StoreLog.Collector.GetSnapshot());
    }
}
