namespace Tessera.Storage.DuckDb;

/// <summary>Settings of the embedded store. Defaults fit a small machine: see docs/configuration.md.</summary>
public sealed record DuckDbStoreOptions(string Path)
{
    /// <summary>How long a (source, messageId) pair is remembered to drop a resent message. Segment's default: 7 days.</summary>
    public TimeSpan DedupWindow { get; init; } = TimeSpan.FromDays(7);

    /// <summary>DuckDB's own memory cap; the process's hot state comes on top.</summary>
    public int MemoryLimitMb { get; init; } = 256;

    /// <summary>DuckDB worker threads for queries.</summary>
    public int Threads { get; init; } = Environment.ProcessorCount;

    /// <summary>Stops migrating at this version; tests use it to build a file as an older release left it.</summary>
    internal int? MigrateUpTo { get; init; }
}
