using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace Tessera.Storage.DuckDb;

/// <summary>Settings of the embedded store. Defaults fit a small machine: see docs/configuration.md.</summary>
public sealed record DuckDbStoreOptions(string Path)
{
    /// <summary>The defaults of the DuckDB settings the server also exposes (TesseraOptions takes them from here), and DuckDB's row group.</summary>
    public const int DefaultMemoryLimitMb = 96, DefaultCheckpointThresholdMb = 64, DefaultReresolveMemoryLimitMb = 4096, RowGroupRows = 122_880, DefaultBulkCommitEvents = 3 * RowGroupRows;

    /// <summary>How long a (source, messageId) pair is remembered to drop a resent message. Segment's default: 7 days.</summary>
    public TimeSpan DedupWindow { get; init; } = TimeSpan.FromDays(7);

    /// <summary>DuckDB's own memory cap (its buffer manager: rows not yet checkpointed, cached blocks); the process's hot state comes on top. See TesseraOptions.DuckDbMemoryLimitMb.</summary>
    public int MemoryLimitMb { get; init; } = DefaultMemoryLimitMb;

    /// <summary>
    /// Write-ahead log size at which DuckDB folds the log into the file (its default is 16 MB). A checkpoint runs
    /// inside the commit that crosses the threshold and compresses the log's rows into the table (re-reading the last,
    /// partly filled row group: the profile shows its strings scanned and FSST-compressed again), so at
    /// collection rates a small threshold means a multi-second commit every few seconds. Larger costs a longer log
    /// replay after a crash and keeps more not-yet-checkpointed rows in memory (within <see cref="MemoryLimitMb"/>).
    /// Durability is the same either way: every commit syncs the log. DuckDB does not checkpoint in a commit while
    /// another transaction runs; when that let the log grow to four times the threshold, the committer checkpoints.
    /// </summary>
    public int CheckpointThresholdMb { get; init; } = DefaultCheckpointThresholdMb;

    /// <summary>
    /// DuckDB's memory cap while a re-resolve is applied (it returns to <see cref="MemoryLimitMb"/> after): the swap
    /// rewrites the identity log, the trait history and the profile state in one transaction, and at 10,000,000 events
    /// and 1,000,000 profiles its commit failed at 256 MB ("failed to pin block"). A cap, not an allocation.
    /// </summary>
    public int ReresolveMemoryLimitMb { get; init; } = DefaultReresolveMemoryLimitMb;

    /// <summary>
    /// Where the store says what it does at open that can take long: a schema upgrade's steps, some of which copy whole
    /// tables (minutes at tens of millions of events), each with its duration. Nothing is logged by default.
    /// </summary>
    public ILogger Logger { get; init; } = NullLogger.Instance;

    /// <summary>The committer thread's nice value (<see cref="BackgroundPriority"/>); 0 runs it at the process's priority.</summary>
    public int BackgroundNice { get; init; } = BackgroundPriority.DefaultNice;

    /// <summary>
    /// DuckDB's threads for the queries that pay for them (audience previews and member lists, event pages,
    /// re-resolving); the store's writes and small reads run on one (<see cref="QueryThreads"/>).
    /// </summary>
    public int Threads { get; init; } = Environment.ProcessorCount;

    /// <summary>The clock <see cref="QueryThreads"/> reads (tests move it).</summary>
    internal TimeProvider Time { get; init; } = TimeProvider.System;

    /// <summary>
    /// Trait values kept in <c>profile_trait_updates</c> before an append folds them into <c>profile_traits</c> (one
    /// upsert, which costs about the same at 100 rows as at 50,000 on a million profiles). Audiences read both.
    /// </summary>
    public long TraitFoldRows { get; init; } = 50_000;

    /// <summary>
    /// Events resolved in the engine but not yet committed (held in memory packed, ~430 bytes each with the raw JSON
    /// compressed: <c>StagedEvents</c>, waiting behind a commit, such as one that runs a checkpoint) beyond which appends
    /// wait for the committer: the bound on that memory. 50,000 since 2026-12-06 (100,000 before): with the journal on
    /// (the default) the events held back meanwhile wait in its file, durable already, and over five minutes flat out the
    /// smaller bound held ~30 MB less resident at the same rate (docs/benchmarks.md, "The event properties typed before
    /// the committer").
    /// </summary>
    public int MaxStagedEvents { get; init; } = 50_000;

    /// <summary>
    /// The same bound on those events' JSON as received (before compression), in bytes: at the load generator's 670 B a
    /// message, 50,000 events are 34 MB of it (the count bound comes first), but at Segment's 32 KB per event the count
    /// alone would let 3.2 GB of JSON wait, and JSON that does not compress is held as it is.
    /// Whichever bound is passed first makes appends wait. A cap, not an allocation.
    /// </summary>
    public long MaxStagedBytes { get; init; } = 100L << 20;

    /// <summary>
    /// The least time between the starts of two commits of journaled events (those the journal already made durable): at
    /// a low rate every request used to be a commit of its own, each costing the committer milliseconds whatever it held
    /// and followed by a derivation step of activation and of the journeys; 1,000 single-event requests a second kept
    /// 1.45 of the 2 cores busy, 1.16 with this interval (docs/benchmarks.md). Events appended without the journal, whose
    /// callers wait for the commit, are committed at once. What reads the engine sees events before their commit either way.
    /// </summary>
    public TimeSpan JournaledCommitInterval { get; init; } = TimeSpan.FromMilliseconds(25);

    /// <summary>
    /// Under load the committer keeps its transaction open until it holds this many events (three of DuckDB's row groups,
    /// <see cref="RowGroupRows"/> rows each), writing what is staged into it as it comes, or for
    /// <see cref="BulkCommitWindow"/>, whichever is first: a transaction that appends whole row groups to a table has
    /// DuckDB write that table's rows compressed into the file as each group fills, and its commit logs only where they
    /// are, instead of each row going through the write-ahead log and being compressed again from memory at the next
    /// checkpoint. Three, because such a commit leaves the table's last row group partly filled, and DuckDB's
    /// checkpoint merges any four adjacent row groups that fit in three by rewriting them: with three full groups
    /// between two partial ones nothing fits (docs/benchmarks.md, "Commits of a row group"). "Under load" is events
    /// staged faster than <see cref="BulkCommitEvents"/> per <see cref="BulkCommitWindow"/> (30,720 a second by
    /// default); below that, and while a reader waits for what was acknowledged (<see cref="DuckDbStore.PromptCommits"/>)
    /// or an append waits for its commit, it commits at <see cref="JournaledCommitInterval"/> as before. Zero turns it off.
    /// The journal's backlog bound must hold a bulk's events (at the load generator's 670 bytes, ~250 MB).
    /// </summary>
    public int BulkCommitEvents { get; init; } = DefaultBulkCommitEvents;

    /// <summary>The longest the committer keeps a transaction open under load (<see cref="BulkCommitEvents"/>).</summary>
    public TimeSpan BulkCommitWindow { get; init; } = DefaultBulkCommitWindow;

    public static readonly TimeSpan DefaultBulkCommitWindow = TimeSpan.FromSeconds(12);

    /// <summary>
    /// Events written into the committer's open transaction after which its appenders hand their rows to DuckDB (each
    /// appender buffers up to 204,800 rows of its own otherwise, outside DuckDB's memory limit).
    /// </summary>
    internal int AppenderFlushEvents { get; init; } = 16_384;

    /// <summary>
    /// How often the kernel is asked to start writing the store file's dirty pages (Linux; zero turns it off): a
    /// checkpoint's writes then reach the disk as it makes them, not in one burst at its end that stalls the journal's
    /// fsync (<see cref="WritebackPacer"/>).
    /// </summary>
    public TimeSpan WritebackInterval { get; init; } = TimeSpan.FromMilliseconds(10);

    /// <summary>
    /// Messages sampled to train a zstd dictionary for the raw JSON (<see cref="RawCodec"/>): the first dictionary is
    /// trained from the store's first messages (rows before it are kept as plain text), each later one from the last
    /// messages before every <see cref="RawDictionaryEvery"/> events. 2,000 of the load generator's messages train a
    /// 32 KB dictionary in ~38 ms (`RawCodecBenchmarks`), off the append path.
    /// </summary>
    public int RawDictionarySamples { get; init; } = 2_000;

    /// <summary>Events after which a new dictionary is trained from the latest messages (what the sources send changes).</summary>
    public long RawDictionaryEvery { get; init; } = 1_000_000;

    /// <summary>
    /// Tests only: the slots of the dedup index's table of recent ids (a power of two, at least 1,024) before its ids
    /// move to runs in files (<see cref="Events.MessageIdIndex"/>; 183,500 ids by default), so a test reaches the runs
    /// with a few thousand events.
    /// </summary>
    internal int DedupRecentSlots { get; init; } = Events.MessageIdIndex.DefaultMaxRecentSlots;

    /// <summary>
    /// Tests only: the committer waits this long before each transaction it opens (a slow disk, a checkpoint), while
    /// appends go on; nothing staged meanwhile is committed.
    /// </summary>
    public TimeSpan CommitDelay { get; init; }

    /// <summary>
    /// Tests only: while this gate is closed the committer waits before each transaction it opens, while appends go on
    /// (<see cref="DuckDb.CommitGate"/>); nothing staged meanwhile is written or committed.
    /// </summary>
    internal CommitGate? CommitGate { get; init; }

    /// <summary>Stops migrating at this version; tests use it to build a file as an older release left it.</summary>
    internal int? MigrateUpTo { get; init; }
}
