using DuckDB.NET.Data;
using Tessera.Core.Identity;
using Tessera.Core.Profiles;
using Tessera.Storage.DuckDb;
using Tessera.Testing;

namespace Tessera.Storage.Tests;

/// <summary>
/// DuckDB's allocator (its jemalloc): one per process, so these tests run alone, not beside other tests whose DuckDB
/// instances allocate, free and purge in the same allocator while these read its counts.
/// </summary>
[Collection(nameof(DuckDbAllocatorTests))]
[CollectionDefinition(nameof(DuckDbAllocatorTests), DisableParallelization = true)]
public sealed class DuckDbAllocatorTests
{
    /// <summary>
    /// Memory DuckDB freed stays resident in its allocator over the decay time (5 + 5 s in this test process, which does
    /// not set tessera's shorter one); a purge gives it back at once.
    /// </summary>
    [Fact]
    public async Task a_purge_gives_back_at_once_the_pages_duckdb_freed()
    {
        if (!OperatingSystem.IsLinux())
        {
            Assert.False(DuckDbAllocator.Purge());
            return;
        }

        await using var connection = await HoldStringsAsync();
        await ExecuteAsync(connection, "DROP TABLE held");

        var before = DuckDbAllocator.Stats()!.Value;
        Assert.True(before.Resident - before.Allocated > (30L << 20), $"only {before.Resident - before.Allocated:N0} bytes held beyond what is allocated after dropping ~50 MB");
        Assert.True(before.Dirty + before.Muzzy > (30L << 20), $"freed pages not yet given back after dropping ~50 MB: {before}");
        Assert.True(DuckDbAllocator.Purge());
        var after = DuckDbAllocator.Stats()!.Value;
        Assert.True(after.Resident - after.Allocated < before.Resident - before.Allocated - (30L << 20), $"held beyond allocated: {before.Resident - before.Allocated:N0} → {after.Resident - after.Allocated:N0} bytes");
        Assert.True(after.Dirty + after.Muzzy < (8L << 20), $"freed pages left after the purge: {after}");
    }

    /// <summary>
    /// What DuckDB's allocator holds, as jemalloc counts it (the split of the server's resident set that DuckDB's buffer
    /// counts miss): it grows by what DuckDB keeps, and an open store publishes it as a gauge.
    /// </summary>
    [Fact]
    public async Task duckdbs_allocator_counts_what_duckdb_holds_and_an_open_store_publishes_it()
    {
        // DuckDB's library has jemalloc on Linux only; elsewhere Stats() is null and the gauge has no measurement.
        if (!OperatingSystem.IsLinux())
        {
            Assert.Null(DuckDbAllocator.Stats());
            return;
        }

        await using var store = new DuckDbStore(new DuckDbStoreOptions(Path.Combine(TempDirectory.Create("allocator"), "a.duckdb")) { Threads = 1 }, new ProfileEngine(IdentityRules.Default, ProfileRules.Default));
        await store.OpenAsync(CancellationToken.None);
        var before = DuckDbAllocator.Stats() ?? throw new InvalidOperationException("no jemalloc statistics");
        Assert.InRange(before.Allocated, 1, before.Resident);

        await using var connection = await HoldStringsAsync();

        var after = DuckDbAllocator.Stats()!.Value;
        Assert.True(after.Allocated > before.Allocated + (30L << 20), $"allocated {before.Allocated:N0} → {after.Allocated:N0}");
        Assert.True(after.Resident >= after.Allocated, $"resident {after.Resident:N0}, allocated {after.Allocated:N0}");
        Assert.InRange(after.Active, after.Allocated, after.Resident);
        Assert.InRange(after.Metadata, 1, after.Resident);

        var seen = new Dictionary<string, long>();
        using var listener = new System.Diagnostics.Metrics.MeterListener();
        listener.InstrumentPublished = (instrument, l) =>
        {
            if (instrument.Meter.Name == "Tessera.Storage" && instrument.Name == "tessera.store.duckdb.allocator") { l.EnableMeasurementEvents(instrument); }
        };
        listener.SetMeasurementEventCallback<long>((_, value, tags, _) =>
        {
            foreach (var tag in tags) { seen[(string)tag.Value!] = value; }
        });
        listener.Start();
        listener.RecordObservableInstruments();
        Assert.True(seen.GetValueOrDefault("allocated") > after.Allocated / 2, $"gauge: {string.Join(", ", seen)}");
        Assert.True(seen.GetValueOrDefault("resident") > after.Allocated / 2, $"gauge: {string.Join(", ", seen)}");
        Assert.True(seen.GetValueOrDefault("active") >= seen["allocated"] && seen.GetValueOrDefault("metadata") > 0, $"gauge: {string.Join(", ", seen)}");
        Assert.Contains("dirty", seen.Keys);
        Assert.Contains("muzzy", seen.Keys);
    }


    /// <summary>An in-memory DuckDB holding a table <c>held</c> of ~50 MB of strings (not inlined: longer than 12 bytes).</summary>
    private static async Task<DuckDBConnection> HoldStringsAsync()
    {
        var connection = new DuckDBConnection("Data Source=:memory:");
        await connection.OpenAsync();
        await ExecuteAsync(connection, "CREATE TABLE held AS SELECT range AS i, repeat('x', 40) || range::VARCHAR AS s FROM range(1000000)");
        return connection;
    }

    private static async Task ExecuteAsync(DuckDBConnection connection, string sql)
    {
        await using var command = connection.CreateCommand();
        command.CommandText = sql;
        await command.ExecuteNonQueryAsync();
    }
}
