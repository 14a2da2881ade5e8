using Tessera.Server.Activation;
using Tessera.Server.Journeys;
using Tessera.Storage;
using Tessera.Storage.DuckDb;

namespace Tessera.Server.Hosting;

/// <summary>
/// Every setting of the server, with its default. The CLI's flags and the configuration section <c>Tessera</c>
/// bind to this one type; to add a setting, add a property here with its default and a line in docs/configuration.md.
/// </summary>
public sealed class TesseraOptions
{
    /// <summary>Where Kestrel listens.</summary>
    public string Urls { get; set; } = "http://127.0.0.1:8080";

    /// <summary>The embedded store's directory; the DuckDB file is <c>tessera.duckdb</c> inside it.</summary>
    public string DataDir { get; set; } = "./data";

    /// <summary><c>duckdb</c> (default) or <c>postgres</c>.</summary>
    public string Store { get; set; } = "duckdb";

    /// <summary>Npgsql connection string, for <c>--store postgres</c>.</summary>
    public string? Postgres { get; set; }

    /// <summary>Seed a demo data set when the store holds no events.</summary>
    public bool Demo { get; set; }

    /// <summary>Bearer token with full rights on /api. Default: <c>TESSERA_ADMIN_TOKEN</c>, else generated once and printed.</summary>
    public string? AdminToken { get; set; } = Environment.GetEnvironmentVariable("TESSERA_ADMIN_TOKEN");

    /// <summary>Ensures a source with this write key exists. Default: <c>TESSERA_WRITE_KEY</c>.</summary>
    public string? WriteKey { get; set; } = Environment.GetEnvironmentVariable("TESSERA_WRITE_KEY");

    /// <summary>How long a resent messageId from the same source is recognised and stored once.</summary>
    public TimeSpan DedupWindow { get; set; } = TimeSpan.FromDays(7);

    /// <summary>Events waiting for the group commit before new requests wait their turn (back-pressure).</summary>
    public int MaxPendingEvents { get; set; } = 100_000;

    /// <summary>
    /// Most events in one group commit (one journal record), and in one chunk the indexer hands a store that commits
    /// each chunk by itself (PostgreSQL: larger chunks, fewer commits).
    /// </summary>
    public int MaxEventsPerCommit { get; set; } = 20_000;

    /// <summary>
    /// Events the indexer reads from the journal and hands the embedded store at a time (whole records: a chunk is at
    /// least one). Its committer joins whatever was handed over since its last commit into one transaction, so this
    /// bounds only what the indexer holds as objects while the engine resolves them: when the store falls behind, every
    /// chunk it reads back is this size, and a chunk that outlives the GC's young generation is copied out of it. Under
    /// the server GC, 5,000 held ~50 MB less than 20,000 flat out for ~2 % of the rate and 2,000 no less for ~5 %; under
    /// the workstation GC (since 2026-12-05), whose young generation is a few megabytes, 1,000 and 2,000 gave ~9 % more
    /// events a second than 5,000 for the same memory (docs/benchmarks.md, "The indexer's chunk", "The request path as bytes, and the workstation GC").
    /// </summary>
    public int IndexChunkEvents { get; set; } = 1_000;

    /// <summary>
    /// Answer a request once its events are in Tessera's journal (one fsync per group commit) and fill the store
    /// from the journal behind the answer. False: answer only after the store's own commit, as before the journal
    /// (every answer then waits out the store's checkpoints). A journal left from an earlier run is replayed either way.
    /// </summary>
    public bool Journal { get; set; } = true;

    /// <summary>The journal's directory; null for <c>journal</c> inside <see cref="DataDir"/>. One process per directory.</summary>
    public string? JournalDir { get; set; }

    /// <summary>Size at which the journal starts a new segment file; a segment is deleted once all of it is in the store.</summary>
    public long JournalSegmentBytes { get; set; } = 64L << 20;

    /// <summary>
    /// How far (bytes of journal) the store may fall behind the journal before new requests wait (back-pressure); ~800,000
    /// typical events. 512 MB since 2026-12-06 (256 before): under load the embedded store holds a bulk commit's events
    /// (368,640, ~250 MB of journal) uncommitted (<see cref="DuckDbBulkCommitEvents"/>). On disk, and in the page cache, not the heap.
    /// </summary>
    public long MaxIndexBacklogBytes { get; set; } = 512L << 20;

    /// <summary>How long a request waits for the store to catch up below <see cref="MaxIndexBacklogBytes"/> before it is answered 503 with Retry-After.</summary>
    public TimeSpan BackPressureTimeout { get; set; } = TimeSpan.FromSeconds(5);

    /// <summary>How long a read of events or profiles waits for the store to hold every event acknowledged before it arrived, before it is answered 503 with Retry-After.</summary>
    public TimeSpan ReadBarrierTimeout { get; set; } = TimeSpan.FromSeconds(10);

    /// <summary>Tests only: the indexer waits this long before each store commit, so the store lags the journal.</summary>
    public TimeSpan IndexerDelay { get; set; }

    /// <summary>
    /// Tests only: the embedded store's committer waits this long before each commit, as a slow disk or a DuckDB
    /// checkpoint would hold it, while the engine goes on.
    /// </summary>
    public TimeSpan CommitDelay { get; set; }

    /// <summary>
    /// DuckDB's memory cap in MB (<c>--duckdb-memory-mb</c>): the blocks its buffer manager holds, i.e. the rows not yet
    /// checkpointed and the blocks it keeps cached after reading or writing them. Past it DuckDB drops cached blocks (the
    /// file holds them) and spills the rest to its temporary file (at 96 MB and 25,000 events/s, 25-120 MB for a second or
    /// two around each checkpoint, against 1-3 MB at 256). At 25,000 events/s the blocks a checkpoint just
    /// wrote stay cached until the cap pushes them out: 96 MB against 256 took 70-220 MB off the server's highest resident
    /// set, for ~5 % slower audience previews at a million profiles. See docs/benchmarks.md, "DuckDB's memory cap".
    /// </summary>
    public int DuckDbMemoryLimitMb { get; set; } = DuckDbStoreOptions.DefaultMemoryLimitMb;

    /// <summary>
    /// DuckDB's write-ahead log size, in MB, at which a commit checkpoints it into the file (the committer forces one
    /// at four times it). The rows committed since the last checkpoint stay in DuckDB's memory, but a smaller threshold
    /// did not lower the resident set in any measurement so far (16 and 32 MB at 25,000 events/s, twice: more CPU, the
    /// same or more memory, since DuckDB's checkpoints themselves set the peaks); it bounds the log on disk. See
    /// docs/benchmarks.md, "The dedup index in native memory, and what the GC's share is made of" and "A slow start
    /// that stays slow, and the quick JIT".
    /// </summary>
    public int DuckDbCheckpointThresholdMb { get; set; } = DuckDbStoreOptions.DefaultCheckpointThresholdMb;

    /// <summary>
    /// Under load, the events in one commit of the embedded store (<c>--duckdb-bulk-commit-events</c>; three of DuckDB's
    /// row groups, 368,640): see <see cref="DuckDbStoreOptions.BulkCommitEvents"/>. 0 commits every 25 ms whatever the rate.
    /// </summary>
    public int DuckDbBulkCommitEvents { get; set; } = DuckDbStoreOptions.DefaultBulkCommitEvents;

    /// <summary>The longest the embedded store holds a transaction open for a bulk commit (<see cref="DuckDbStoreOptions.BulkCommitWindow"/>).</summary>
    public TimeSpan DuckDbBulkCommitWindow { get; set; } = DuckDbStoreOptions.DefaultBulkCommitWindow;

    /// <summary>
    /// DuckDB's threads (<c>--duckdb-threads</c>) for the queries that pay for them: the thread that runs a query and
    /// DuckDB's own workers, together (audience previews, exports, event pages, re-resolving). The store's writes and
    /// small reads run DuckDB on one thread (<c>QueryThreads</c>). Defaults to the machine's cores.
    /// </summary>
    public int DuckDbThreads { get; set; } = Environment.ProcessorCount;

    /// <summary>
    /// The nice value of the threads that work behind the answers (<c>--background-nice</c>): the journal's indexer and
    /// the embedded store's committer (<see cref="BackgroundPriority"/>). The request path keeps the process's own; 0
    /// runs them all alike.
    /// </summary>
    public int BackgroundNice { get; set; } = BackgroundPriority.DefaultNice;

    /// <summary>DuckDB's memory cap in MB while a re-resolve is applied (one transaction rewrites the identity log and the profile state).</summary>
    public int DuckDbReresolveMemoryLimitMb { get; set; } = DuckDbStoreOptions.DefaultReresolveMemoryLimitMb;

    /// <summary>A JSON file with the identity rules (identifier types, paths, normalisation, blocked values, limits, priorities); null for the defaults.</summary>
    public string? IdentityRulesFile { get; set; }

    /// <summary>A JSON file with the trait merge policies (default, per trait, source priority); null for "latest wins".</summary>
    public string? ProfileRulesFile { get; set; }

    /// <summary>A JSON file with a list of computed trait definitions; these cannot be deleted through the API.</summary>
    public string? ComputedTraitsFile { get; set; }

    /// <summary>Print the startup banner (keys, URLs) to standard output.</summary>
    public bool PrintBanner { get; set; } = true;

    /// <summary>Delivery to destinations: retries, timeouts, claims (see <see cref="ActivationOptions"/>).</summary>
    public ActivationOptions Activation { get; set; } = new();

    /// <summary>Moving journey runs: how often due waits are looked for (see <see cref="JourneyOptions"/>).</summary>
    public JourneyOptions Journeys { get; set; } = new();

    public string DuckDbPath => Path.Combine(DataDir, "tessera.duckdb");

    public string JournalPath => JournalDir ?? Path.Combine(DataDir, "journal");
}
