using System.Diagnostics.Metrics;

namespace Tessera.Storage.DuckDb;

/// <summary>
/// The embedded store's committer, measured (meter <c>Tessera.Storage</c>; <c>dotnet-counters monitor -p PID
/// --counters Tessera.Storage</c> shows it live): each commit's duration, tagged with whether it folded the
/// write-ahead log into the file (DuckDB checkpoints inside the commit that crosses its threshold, and the committer
/// checkpoints past its bound), the events committed, the log's size, the checkpoints past the bound that DuckDB
/// refused and those the committer put off because activation was in a step (either way the log keeps growing until
/// one goes through). Beside them, what the store holds in memory: the events staged for the committer, the dedup
/// index's entries (and its files' size), DuckDB's own buffers by tag and what its allocator holds (with the runtime's GC counters, where the process's resident memory
/// goes). One meter per store, so two stores in one process (tests) are told apart.
/// </summary>
internal sealed class DuckDbCommitMetrics : IDisposable
{
    public const string MeterName = "Tessera.Storage";

    private readonly Histogram<double> _duration;
    private readonly Counter<long> _events;
    private readonly Counter<long> _checkpointsRefused;
    private readonly Counter<long> _checkpointsDeferred;
    private bool _memoryObserved;

    public DuckDbCommitMetrics(Func<long> walSize)
    {
        Meter = new Meter(MeterName);
        _duration = Meter.CreateHistogram<double>("tessera.store.commit.duration", "ms", "Time of one committer transaction, checkpoint included when it ran one");
        _events = Meter.CreateCounter<long>("tessera.store.commit.events", "{event}", "Events committed to the embedded store");
        Meter.CreateObservableGauge("tessera.store.wal.size", walSize, "By", "Size of DuckDB's write-ahead log");

        _checkpointsRefused = Meter.CreateCounter<long>("tessera.store.checkpoint.refused", "{checkpoint}",
            "Checkpoints the committer asked for past the write-ahead log's bound that DuckDB refused; the next commit asks again");
        _checkpointsDeferred = Meter.CreateCounter<long>("tessera.store.checkpoint.deferred", "{checkpoint}",
            "Checkpoints past the write-ahead log's bound put off because activation was in a step; the next commit tries again, and past twice the bound it waits");
    }

    public Meter Meter { get; }

    /// <summary>Adds the gauges of what the store holds in memory; once, when the store opens (they read the open store).</summary>
    public void ObserveMemory(Func<long> stagedEvents, Func<long> stagedBytes, Func<long> dedupEntries, Func<long> dedupBytes, Func<long> dedupFileBytes, Func<IEnumerable<Measurement<long>>> duckDbMemory)
    {
        if (_memoryObserved) { return; }
        _memoryObserved = true;
        Meter.CreateObservableGauge("tessera.store.staged.events", stagedEvents, "{event}", "Events resolved in the engine and waiting in memory for the committer");
        Meter.CreateObservableGauge("tessera.store.staged.bytes", stagedBytes, "By", "The JSON of the events waiting for the committer");
        Meter.CreateObservableGauge("tessera.store.dedup.entries", dedupEntries, "{entry}", "(source, messageId) pairs the dedup index holds");
        Meter.CreateObservableGauge("tessera.store.dedup.bytes", dedupBytes, "By", "The dedup index's native memory: its table of recent pairs and what tells a lookup whether to read a run's file");
        Meter.CreateObservableGauge("tessera.store.dedup.file.bytes", dedupFileBytes, "By", "The dedup index's runs of older pairs, in files beside the store (unlinked, so not listed)");
        Meter.CreateObservableGauge("tessera.store.duckdb.memory", duckDbMemory, "By", "Memory DuckDB's buffer manager holds, by tag (duckdb_memory())");
        Meter.CreateObservableGauge("tessera.store.duckdb.allocator", AllocatorStats, "By",
            "DuckDB's allocator (jemalloc, Linux; the process's, the same for every store in it): what DuckDB has allocated (kind=allocated: its buffers and everything else), the memory the allocator holds resident for it (kind=resident), and of that the allocations' pages (kind=active), the allocator's metadata (kind=metadata) and freed pages not yet purged (kind=dirty) or lazily freed (kind=muzzy)");
    }

    private static IEnumerable<Measurement<long>> AllocatorStats() =>
        DuckDbAllocator.Stats() is { } stats
            ?
            [
                Kind(stats.Allocated, "allocated"), Kind(stats.Resident, "resident"), Kind(stats.Active, "active"),
                Kind(stats.Metadata, "metadata"), Kind(stats.Dirty, "dirty"), Kind(stats.Muzzy, "muzzy"),
            ]
            : [];

    private static Measurement<long> Kind(long bytes, string kind) => new(bytes, new KeyValuePair<string, object?>("kind", kind));

    public void Committed(int events, double milliseconds, bool checkpointed)
    {
        _events.Add(events);
        _duration.Record(milliseconds, new KeyValuePair<string, object?>("checkpointed", checkpointed));
    }

    /// <summary>A checkpoint past the bound failed with <paramref name="error"/> (DuckDB's message, as the tag <c>error</c>).</summary>
    public void CheckpointRefused(string error) => _checkpointsRefused.Add(1, new KeyValuePair<string, object?>("error", error));

    /// <summary>A checkpoint past the bound was put off: activation was in a step and the log under twice the bound.</summary>
    public void CheckpointDeferred() => _checkpointsDeferred.Add(1);

    public void Dispose() => Meter.Dispose();
}
