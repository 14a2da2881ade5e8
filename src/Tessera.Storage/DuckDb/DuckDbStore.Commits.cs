using System.Data.Common;
using System.Diagnostics;
using DuckDB.NET.Data;
using Microsoft.Extensions.Logging;
using Tessera.Core.Audiences;
using Tessera.Storage.Audiences;
using Tessera.Storage.Journal;

namespace Tessera.Storage.DuckDb;

/// <summary>
/// Commits behind the engine. An append resolves its events in the <see cref="Core.Profiles.ProfileEngine"/> under the
/// write lock and hands the rows to write to a queue; one committer thread writes whatever is queued in one
/// transaction. The engine (profiles, memberships) moves on at once, while a commit that runs one of DuckDB's
/// checkpoints (seconds) delays only the rows, never the next append. What reads the engine sees an event as soon as
/// it is staged; what reads the tables sees it once committed.
/// </summary>
/// <remarks>
/// Order is kept: items commit in the order they were staged, so a journal mark is never recorded before the rows
/// it covers. A failed commit faults the queue: every item after it fails too (it was computed on top of the lost
/// one), and the next append restores the engine from the file before doing anything else
/// (<see cref="RecoverFromFaultAsync"/>). Operations that read the tables to feed the engine (backfills) or use the
/// writer themselves first wait for the queue to empty (<see cref="DrainCommitsAsync"/>), under the write lock, so
/// nothing can be staged meanwhile.
/// </remarks>
public sealed partial class DuckDbStore
{
    private readonly Lock _stagedGate = new();
    private readonly Queue<StagedCommit> _staged = new();
    private readonly SemaphoreSlim _stagedSignal = new(0);

    // Set while something queued must not wait for the commit interval (an append without the journal, or closing).
    private readonly ManualResetEventSlim _commitNow = new(false);
    private TaskCompletionSource _drained = Completed();
    private TaskCompletionSource _room = Completed();
    private int _outstanding;
    private int _stagedEvents;
    private long _stagedBytes;
    private Exception? _fault;
    private Thread? _committer;
    private volatile bool _closing;

    /// <summary>Set when the state went back to what was committed; the next journal append throws <see cref="StoreRewoundException"/>.</summary>
    private bool _rewindRequired;

    /// <summary>The last journal position committed, per journal id.</summary>
    private readonly Dictionary<string, long> _committedMarks = [];

    private long? CommittedPosition(string journalId)
    {
        lock (_stagedGate) { return _committedMarks.TryGetValue(journalId, out var position) ? position : null; }
    }

    /// <summary>Audience changes staged but not yet committed, by id: what the change log will hold once they are.</summary>
    private readonly SortedDictionary<long, AudienceChange> _stagedChanges = [];

    /// <summary>Rows for the writer, in the transaction of whatever else is committed with them.</summary>
    private sealed class StagedCommit(Action<TableAppenders> write, int events, long bytes, long lastSeq, IReadOnlyList<(long Id, AudienceChange Change)> changes, bool appended, JournalMark? mark)
    {
        private Action<TableAppenders>? _write = write;

        public JournalMark? Mark { get; } = mark;

        /// <summary>Whether it no longer counts in the staged bounds (its rows are in the committer's transaction, or it settled).</summary>
        public bool Unstaged { get; set; }

        /// <summary>Writes its rows into the transaction, then lets go of them (the closure holds the packed events).</summary>
        public void WriteInto(TableAppenders tables)
        {
            var write = _write ?? throw new InvalidOperationException("The staged append was written already.");
            _write = null;
            write(tables);
        }

        public int Events { get; } = events;

        /// <summary>The events' JSON, in bytes (what <see cref="DuckDbStoreOptions.MaxStagedBytes"/> bounds).</summary>
        public long Bytes { get; } = bytes;

        /// <summary>The seq of the last event it writes; 0 when it writes none.</summary>
        public long LastSeq { get; } = lastSeq;

        public IReadOnlyList<(long Id, AudienceChange Change)> Changes { get; } = changes;

        public bool Appended { get; } = appended;

        public TaskCompletionSource Committed { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);
    }

    private static TaskCompletionSource Completed()
    {
        var done = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        done.SetResult();
        return done;
    }

    private void StartCommitter()
    {
        _committer = new Thread(CommitLoop) { IsBackground = true, Name = "Tessera DuckDB committer" };
        _committer.Start();
    }

    /// <summary>
    /// Queues rows for the committer, then announces their audience changes as staged (<c>AudienceStaged</c>); called
    /// under the write lock, in the order the engine produced them.
    /// </summary>
    private Task Stage(Action<TableAppenders> write, int events, long bytes, long lastSeq, IReadOnlyList<(long Id, AudienceChange Change)> changes, bool appended, JournalMark? mark)
    {
        var item = new StagedCommit(write, events, bytes, lastSeq, changes, appended, mark);
        lock (_stagedGate)
        {
            if (_fault is { } fault)
            {
                item.Committed.SetException(fault);
                return item.Committed.Task;
            }

            if (_outstanding++ == 0) { _drained = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously); }
            _stagedEvents += events;
            _stagedBytes += bytes;
            if (!HasRoom() && _room.Task.IsCompleted) { _room = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously); }
            foreach (var (id, change) in changes) { _stagedChanges[id] = change; }
            _staged.Enqueue(item);
            if (mark is null) { _commitNow.Set(); }
        }

        _stagedSignal.Release();
        AnnounceStaged(changes);
        return item.Committed.Task;
    }

    /// <summary>Within both bounds on what waits for the committer (call under <see cref="_stagedGate"/>).</summary>
    private bool HasRoom() => _stagedEvents <= options.MaxStagedEvents && _stagedBytes <= options.MaxStagedBytes;

    /// <summary>
    /// Waits while more than <see cref="DuckDbStoreOptions.MaxStagedEvents"/> events, or more than
    /// <see cref="DuckDbStoreOptions.MaxStagedBytes"/> of their JSON, wait for their commit (memory bound).
    /// </summary>
    private Task WaitForRoomAsync(CancellationToken cancellationToken)
    {
        lock (_stagedGate) { return _room.Task.WaitAsync(cancellationToken); }
    }

    /// <summary>
    /// Waits until everything staged is committed; if a commit failed, restores the state from the file first. Call
    /// under the write lock, so nothing new is staged meanwhile.
    /// </summary>
    private async Task DrainCommitsAsync()
    {
        await WaitDrainedAsync();
        await RecoverFromFaultAsync();
    }

    private async Task WaitDrainedAsync()
    {
        Task drained;
        lock (_stagedGate) { drained = _drained.Task; }
        if (drained.IsCompleted) { return; }
        // Nothing is staged meanwhile (the caller holds the write lock): the committer must not hold its transaction open for more.
        using (PromptCommits()) { await drained; }
    }

    /// <summary>
    /// After a failed commit: waits for the queue to empty (every item fails), then rebuilds what the engine and the
    /// append bookkeeping hold from what the file has, and asks the journal's indexer to read again from what was
    /// committed (<see cref="_rewindRequired"/>). Call under the write lock. The fault stays until the restore is
    /// complete: a restore that fails (the cause of the failed commit still there) leaves the queue failing what is
    /// staged, and the next call restores again from the start, never from a half-restored engine or dedup index.
    /// </summary>
    private async Task RecoverFromFaultAsync()
    {
        if (Volatile.Read(ref _fault) is null) { return; }
        await WaitDrainedAsync();
        lock (_stagedGate) { _stagedChanges.Clear(); }
        _rewindRequired = true;
        _engine.Clear();
        _messageIds.Clear();
        // Whole-table reads, as at the start: on all of DuckDB's threads (QueryThreads), lowered by the committer later.
        using var parallel = ParallelQuery();
        try
        {
            await LoadMessageIdsAsync(CancellationToken.None);
            _lastSeq = await ScalarAsync<long>("SELECT coalesce(max(seq), 0) FROM events", CancellationToken.None);
            await LoadRawDictionariesAsync(CancellationToken.None);
            _pendingTraitRows = await ScalarAsync<long>("SELECT count(*) FROM profile_trait_updates", CancellationToken.None);
            await RestoreProfilesAsync(CancellationToken.None);
        }
        catch (DbException e)
        {
            // Named as the failed commit is (the disk full, the file in use...), for the indexer's retries and its log.
            throw DuckDbErrors.Translate(e, "restore after a failed commit", options.Path);
        }

        lock (_stagedGate) { _fault = null; }
    }

    private void CommitLoop()
    {
        BackgroundPriority.Apply(options.BackgroundNice);
        var transaction = new OpenTransaction();
        var taken = new List<StagedCommit>();
        // When the last commit started: the interval is kept from it, and what was staged since measures the rate.
        var lastCommit = Stopwatch.GetTimestamp();
        while (true)
        {
            if (transaction.Items.Count == 0)
            {
                _stagedSignal.Wait();
                WaitForCommitInterval(lastCommit);
            }
            else
            {
                _stagedSignal.Wait(NextLook(transaction, lastCommit));
            }

            taken.Clear();
            bool now;
            lock (_stagedGate)
            {
                // Everything waiting goes into the transaction: under a long commit, the next one takes the backlog at once.
                now = _commitNow.IsSet || _closing;
                if (!_closing) { _commitNow.Reset(); }
                while (_staged.TryDequeue(out var item))
                {
                    taken.Add(item);
                    if (taken.Count > 1) { _stagedSignal.Wait(0); }
                }
            }

            if (taken.Count == 0 && transaction.Items.Count == 0)
            {
                if (_closing) { return; }
                continue;
            }

            var failure = Volatile.Read(ref _fault);
            if (failure is null)
            {
                try
                {
                    if (transaction.Items.Count == 0)
                    {
                        if (options.CommitDelay > TimeSpan.Zero) { Thread.Sleep(options.CommitDelay); }
                        options.CommitGate?.WaitOpen();
                    }

                    // A caller waits for this commit (an append without the journal): DuckDB's threads, as for a
                    // parallel query, take its commit's work in parallel (QueryThreads).
                    using var parallel = taken.Exists(item => item.Mark is null) ? RaiseQueryThreads() : default;
                    WriteInto(transaction, taken);
                    if (!ShouldCommit(transaction, now, lastCommit)) { continue; }
                    lastCommit = Stopwatch.GetTimestamp();
                    CommitTransaction(transaction);
                    LowerQueryThreads();
                }
                catch (Exception e) when (e is DbException or InvalidOperationException)
                {
                    failure = e is DbException d ? DuckDbErrors.Translate(d, "commit staged appends", options.Path) : e;
                    transaction.RollBack(_writer!);
                }
            }
            else
            {
                transaction.Items.AddRange(taken);
            }

            Settle(transaction.Items, failure);
            transaction.Clear();
        }
    }

    /// <summary>
    /// The committer's transaction, open from the first staged append written into it to its commit: under load it
    /// takes many of the indexer's chunks (<see cref="DuckDbStoreOptions.BulkCommitEvents"/>), otherwise what was staged
    /// within <see cref="DuckDbStoreOptions.JournaledCommitInterval"/>.
    /// </summary>
    private sealed class OpenTransaction
    {
        public List<StagedCommit> Items { get; } = [];

        public TableAppenders? Tables { get; private set; }

        public int Events { get; private set; }

        /// <summary>Events written since the appenders last handed their rows to DuckDB.</summary>
        public int Unflushed { get; set; }

        public long WriteTicks { get; set; }

        /// <summary>When it was begun (a <see cref="Stopwatch"/> timestamp).</summary>
        public long Opened { get; private set; }

        /// <summary>Its appenders; begins it first if it is not open.</summary>
        public TableAppenders Begin(DuckDBConnection writer)
        {
            if (Tables is { } open) { return open; }
            Execute(writer, "BEGIN TRANSACTION");
            Opened = Stopwatch.GetTimestamp();
            return Tables = new TableAppenders(writer);
        }

        /// <summary>Takes <paramref name="items"/> into it (all of them, so a failure while writing them settles them all).</summary>
        public void Add(List<StagedCommit> items)
        {
            foreach (var item in items)
            {
                Items.Add(item);
                Events += item.Events;
                Unflushed += item.Events;
            }
        }

        /// <summary>Ends a failed transaction; a commit that failed may have ended it already.</summary>
        public void RollBack(DuckDBConnection writer)
        {
            if (Tables is null) { return; }
            try
            {
                Tables.Dispose();
            }
            catch (Exception e) when (e is DbException or InvalidOperationException)
            {
                // Its rows are rolled back below either way.
            }

            RollBackQuietly(writer);
            Tables = null;
        }

        public void Clear()
        {
            Items.Clear();
            Tables = null;
            Events = 0;
            Unflushed = 0;
            WriteTicks = 0;
        }
    }

    /// <summary>
    /// Writes the staged appends just taken into the open transaction (opening it for the first), then lets go of their
    /// rows: from here on they are DuckDB's, no longer counted in the staged bounds. The appenders hand their rows to
    /// DuckDB every <see cref="DuckDbStoreOptions.AppenderFlushEvents"/>, so what a long transaction holds is in DuckDB's
    /// storage (written to the file a row group at a time), not in the appenders' own buffers.
    /// </summary>
    private void WriteInto(OpenTransaction transaction, List<StagedCommit> taken)
    {
        if (taken.Count == 0) { return; }
        var started = Stopwatch.GetTimestamp();
        transaction.Add(taken);
        var tables = transaction.Begin(_writer!);
        foreach (var item in taken)
        {
            item.WriteInto(tables);
            Unstage(item);
        }

        if (transaction.Unflushed >= options.AppenderFlushEvents)
        {
            tables.Close();
            transaction.Unflushed = 0;
        }

        transaction.WriteTicks += Stopwatch.GetTimestamp() - started;
    }

    /// <summary>
    /// Whether to commit the open transaction now: at once when asked (an append without the journal waits for it, the
    /// store is closing), when it holds <see cref="DuckDbStoreOptions.BulkCommitEvents"/> or has been open for
    /// <see cref="DuckDbStoreOptions.BulkCommitWindow"/>; once <see cref="DuckDbStoreOptions.JournaledCommitInterval"/>
    /// has passed since the last commit started, unless what it holds (staged since then) came faster than a bulk
    /// commit's rate and no reader waits for it. At a low rate that is the commit every interval of before: the first
    /// look comes after the interval, and commits.
    /// </summary>
    private bool ShouldCommit(OpenTransaction transaction, bool now, long lastCommit)
    {
        if (now || options.BulkCommitEvents <= 0 || transaction.Events >= options.BulkCommitEvents) { return true; }
        if (Stopwatch.GetElapsedTime(transaction.Opened) >= options.BulkCommitWindow) { return true; }
        var since = Stopwatch.GetElapsedTime(lastCommit);
        if (since < options.JournaledCommitInterval) { return false; }
        return Volatile.Read(ref _prompted) > 0
            || transaction.Events < options.BulkCommitEvents * (since / options.BulkCommitWindow);
    }

    /// <summary>How long the committer waits for more staged appends before it looks at its open transaction again.</summary>
    private TimeSpan NextLook(OpenTransaction transaction, long lastCommit)
    {
        var untilInterval = options.JournaledCommitInterval - Stopwatch.GetElapsedTime(lastCommit);
        var untilWindow = options.BulkCommitWindow - Stopwatch.GetElapsedTime(transaction.Opened);
        var wait = untilInterval > TimeSpan.Zero ? untilInterval : options.JournaledCommitInterval;
        wait = wait < untilWindow ? wait : untilWindow;
        return wait > TimeSpan.FromMilliseconds(1) ? wait : TimeSpan.FromMilliseconds(1);
    }

    /// <summary>
    /// Records the transaction's journal positions and commits it. Its <c>COMMIT</c> (which runs DuckDB's checkpoints)
    /// goes through <see cref="WaitingStatement"/>, so the committer does not poll DuckDB's task queue while DuckDB's
    /// worker runs it.
    /// </summary>
    /// <summary>
    /// Back to one DuckDB thread once no parallel query has run for a while (<see cref="QueryThreads"/>): between the
    /// committer's transactions, so its next checkpoint runs on its own thread. A failure leaves the threads as they are.
    /// </summary>
    private void LowerQueryThreads()
    {
        try
        {
            _queryThreads?.LowerIfIdle();
        }
        catch (Exception e) when (e is DbException or InvalidOperationException)
        {
            options.Logger.LogWarning(e, "DuckDB's threads could not be lowered to one after a parallel query");
        }
    }

    /// <summary>
    /// DuckDB's threads for a commit a caller waits for; a failure to raise them commits on one thread rather than failing
    /// the commit (the committer takes a <see cref="DbException"/> or <see cref="InvalidOperationException"/> for its own).
    /// </summary>
    private QueryThreads.Lease RaiseQueryThreads()
    {
        try
        {
            return ParallelQuery();
        }
        catch (Exception e) when (e is DbException or InvalidOperationException)
        {
            options.Logger.LogWarning(e, "DuckDB's threads could not be raised for a commit a caller waits for; it runs on one");
            return default;
        }
    }

    private void CommitTransaction(OpenTransaction transaction)
    {
        var started = Stopwatch.GetTimestamp();
        var walBefore = WalSize();
        var tables = transaction.Tables ?? throw new InvalidOperationException("No transaction is open.");
        RecordJournalPositions(tables.Connection, transaction.Items);
        tables.Dispose();
        WaitingStatement.Run(_writer!, "COMMIT");

        // A log shorter after the commit than before it was folded into the file by DuckDB in the commit.
        var wal = WalSize();
        var checkpointed = CheckpointPastBound(wal, afterRowGroups: LeftMergeableRowGroups(tables)) || wal < walBefore;
        // A commit that gave a table a row group or more (each table's rows, as below) or a checkpoint frees the
        // transaction's row groups, or the checkpoint's, at once: DuckDB's allocator would keep those pages resident over
        // its decay (100 ms and its background thread's wake-ups); flat out one second caught 160 MB resident for 40
        // allocated, the highest of a five-minute run (docs/benchmarks.md, "One arena for DuckDB's allocator"). Given
        // back here, on the committer, before its next transaction. The C library's heap likewise: DuckDB's objects
        // outside its allocator (a checkpoint's compression analyses) leave free chunks between held ones that glibc keeps
        // resident (44 MB of 65 MB in one sample flat out); its trim takes 1-6 ms here and the highest resident set was
        // 10-21 MB lower in three interleaved rounds (docs/benchmarks.md, "The C library's heap trimmed").
        if (checkpointed || tables.Rows.Values.Any(rows => rows >= DuckDbStoreOptions.RowGroupRows))
        {
            DuckDbAllocator.Purge();
            NativeHeap.Trim();
        }
        var ticks = transaction.WriteTicks + (Stopwatch.GetTimestamp() - started);
        _metrics.Committed(transaction.Events, ticks * 1000.0 / Stopwatch.Frequency, checkpointed);
    }

    /// <summary>
    /// Whether a commit (with bulk commits on) gave a table at least one of DuckDB's row groups of rows but fewer than
    /// <see cref="RowGroupsNothingMerges"/>: the load fell off while the transaction was open, or a reader prompted it.
    /// DuckDB wrote those row groups into the file at once and left the table a last one partly filled, and its
    /// checkpoint merges any four adjacent row groups that fit in three by rewriting them: left for the log's threshold
    /// (which commits of row groups hardly grow), one checkpoint after 150 s flat out of commits of one row group
    /// rewrote 1.3 GB in 30 s, so such a commit is followed by a checkpoint. It counts each table's rows, not the
    /// events: <c>event_properties</c> has ~5 rows an event, so a commit of 25,000 events gives it a row group.
    /// A bulk commit (three row groups of events, ~15 of properties) leaves nothing DuckDB can merge; a commit of fewer
    /// rows than a row group adds them to the table's last row group (docs/benchmarks.md, "Commits of a row group").
    /// </summary>
    private bool LeftMergeableRowGroups(TableAppenders tables)
    {
        if (options.BulkCommitEvents <= 0) { return false; }
        foreach (var rows in tables.Rows.Values)
        {
            if (rows >= DuckDbStoreOptions.RowGroupRows && rows < RowGroupsNothingMerges * (long)DuckDbStoreOptions.RowGroupRows) { return true; }
        }

        return false;
    }

    /// <summary>Full row groups between two partly filled ones that DuckDB's checkpoint cannot merge (four that fit in three).</summary>
    private const int RowGroupsNothingMerges = 3;

    /// <summary>Ends a failed transaction; a commit that failed may have ended it already.</summary>
    private static void RollBackQuietly(DuckDBConnection writer)
    {
        try
        {
            Execute(writer, "ROLLBACK");
        }
        catch (DbException)
        {
            // No transaction left to end.
        }
    }

    /// <summary>
    /// Holds the first write of a transaction until <see cref="DuckDbStoreOptions.JournaledCommitInterval"/> has passed
    /// since the last commit started, while everything waiting is journaled (durable already, and seen by the engine): so at a
    /// low rate the events of many requests share one commit instead of one each. Under load a commit takes longer than
    /// the interval and nothing waits. Not while closing, nor once an append without the journal waits for its commit.
    /// </summary>
    private void WaitForCommitInterval(long lastCommit)
    {
        var left = options.JournaledCommitInterval - Stopwatch.GetElapsedTime(lastCommit);
        if (left > TimeSpan.Zero) { _commitNow.Wait(left); }
    }

    private int _prompted;

    /// <summary>
    /// While the returned handle is held, the committer commits what it has at <see cref="DuckDbStoreOptions.JournaledCommitInterval"/>
    /// instead of holding its transaction open for a bulk commit: someone waits for what was staged (a reader behind
    /// the read barrier, a drain).
    /// </summary>
    public IDisposable PromptCommits()
    {
        Interlocked.Increment(ref _prompted);
        _stagedSignal.Release();
        return new Prompt(this);
    }

    private sealed class Prompt(DuckDbStore store) : IDisposable
    {
        private int _disposed;

        public void Dispose()
        {
            if (Interlocked.Exchange(ref _disposed, 1) == 0) { Interlocked.Decrement(ref store._prompted); }
        }
    }

    /// <summary>The write-ahead log's bound, in multiples of <see cref="DuckDbStoreOptions.CheckpointThresholdMb"/>.</summary>
    private const int CheckpointBoundFactor = 4;

    /// <summary>The log's hard bound, same unit: past it the committer waits for activation's step to checkpoint.</summary>
    private const int CheckpointHardBoundFactor = 2 * CheckpointBoundFactor;

    /// <summary>
    /// Folds the write-ahead log into the file when it has grown to <see cref="CheckpointBoundFactor"/> times
    /// <see cref="DuckDbStoreOptions.CheckpointThresholdMb"/>. DuckDB checkpoints inside a commit only when no other
    /// transaction is running, and with a destination active, activation's transactions (deriving deliveries right
    /// after each commit) often are: the log then grows until a commit finds a quiet moment (it reached 335 MB).
    /// Checkpointing here at the threshold itself was measured worse (webhook p99 394 vs 210 ms; docs/benchmarks.md):
    /// every checkpoint compresses each table's last, partly filled row group again, so more checkpoints cost more CPU.
    /// This is the bound on the log, not the schedule. Activation is held off while it runs; a query still reading
    /// rows the log holds makes it fail, and the next commit tries again.
    /// Between the bound and <see cref="CheckpointHardBoundFactor"/> the committer checkpoints only if activation is not in
    /// a step: waiting for one idled the committer a fifth of the time flat out, while events queued behind it
    /// (docs/benchmarks.md, "A checkpoint that does not wait for activation"); it counts the deferral
    /// (tessera.store.checkpoint.deferred) and the next commit tries again. Past the hard bound it waits, so the log stays bounded.
    /// </summary>
    /// <param name="afterRowGroups">After a commit that left row groups DuckDB would merge: checkpoint whatever the log's size (unless activation is in a step).</param>
    /// <returns>Whether it checkpointed.</returns>
    private bool CheckpointPastBound(long wal, bool afterRowGroups = false)
    {
        var threshold = options.CheckpointThresholdMb * 1024L * 1024L;
        if (wal < CheckpointBoundFactor * threshold && !afterRowGroups) { return false; }
        if (!_activationLock.Wait(wal < CheckpointHardBoundFactor * threshold ? 0 : Timeout.Infinite))
        {
            _metrics.CheckpointDeferred();
            return false;
        }

        try
        {
            WaitingStatement.Run(_writer!, "CHECKPOINT");
            return true;
        }
        catch (DbException e)
        {
            // Mostly another transaction still running (a long read): the next commit tries again. Counted, so a log that
            // keeps growing shows why (tessera.store.checkpoint.refused).
            _metrics.CheckpointRefused(FirstLine(e.Message));
            return false;
        }
        finally
        {
            _activationLock.Release();
        }
    }

    private static string FirstLine(string message) => message.Split('\n', 2)[0];

    private long WalSize() => WalSizeOf(options);

    /// <summary>The size of the store's write-ahead log (DuckDB keeps it beside the file, named after it); 0 when there is none.</summary>
    private static long WalSizeOf(DuckDbStoreOptions options)
    {
        var wal = new FileInfo(options.Path + ".wal");
        return wal.Exists ? wal.Length : 0;
    }

    /// <summary>
    /// Records, per journal, the last position the batch covers: once per transaction, not per staged item (an upsert
    /// on <c>settings</c> cost about as much as writing the events' rows). An update of the row, and an insert only where
    /// there was none: DuckDB runs <c>INSERT … ON CONFLICT</c> as a merge with a hash join and an aggregate, 1.5 ms a
    /// commit more than the update (docs/benchmarks.md, "What a derivation step and a commit cost at low rates").
    /// </summary>
    private static void RecordJournalPositions(DuckDBConnection writer, List<StagedCommit> batch)
    {
        var last = new Dictionary<string, JournalMark>(StringComparer.Ordinal);
        foreach (var item in batch)
        {
            if (item.Mark is { } mark) { last[mark.JournalId] = mark; }
        }

        foreach (var mark in last.Values)
        {
            object?[] row = [JournalMark.SettingKey(mark.JournalId), mark.Value];
            using var update = Command(writer, "UPDATE settings SET value = $2 WHERE key = $1", row);
            if (update.ExecuteNonQuery() > 0) { continue; }
            using var insert = Command(writer, "INSERT INTO settings (key, value) VALUES ($1, $2)", row);
            insert.ExecuteNonQuery();
        }
    }

    /// <summary>Takes a staged append's rows out of the staged bounds: they are in DuckDB's transaction now.</summary>
    private void Unstage(StagedCommit item)
    {
        lock (_stagedGate)
        {
            UnstageLocked(item);
            if (HasRoom()) { _room.TrySetResult(); }
        }
    }

    private void UnstageLocked(StagedCommit item)
    {
        if (item.Unstaged) { return; }
        item.Unstaged = true;
        _stagedEvents -= item.Events;
        _stagedBytes -= item.Bytes;
    }

    /// <summary>Completes a committed batch in order (announcing its audience changes), or fails it and faults the queue.</summary>
    private void Settle(List<StagedCommit> batch, Exception? failure)
    {
        var changes = new List<AudienceChange>();
        var appended = false;
        lock (_stagedGate)
        {
            if (failure is not null) { _fault ??= failure; }
            foreach (var item in batch)
            {
                foreach (var (id, change) in item.Changes)
                {
                    _stagedChanges.Remove(id);
                    if (failure is null) { changes.Add(change); }
                }

                if (failure is null) { NoteCommitted(item.LastSeq, item.Changes.Count > 0 ? item.Changes[^1].Id : 0); }
                appended |= item.Appended;
                UnstageLocked(item);
                if (failure is null && item.Mark is { } mark) { _committedMarks[mark.JournalId] = mark.Position; }
            }

            if (HasRoom()) { _room.TrySetResult(); }
        }

        foreach (var item in batch)
        {
            if (failure is null) { item.Committed.TrySetResult(); }
            else { item.Committed.TrySetException(failure); }
        }

        if (failure is null)
        {
            Announce(changes);
            if (appended) { Appended?.Invoke(); }
        }

        lock (_stagedGate)
        {
            _outstanding -= batch.Count;
            if (_outstanding == 0) { _drained.TrySetResult(); }
        }
    }

    /// <summary>Stops the committer once the queue is empty.</summary>
    private async Task StopCommitterAsync()
    {
        if (_committer is null) { return; }
        // A test's gate left closed (an assertion failed while a commit was held) must not hold the close forever.
        options.CommitGate?.Open();
        // What a failed commit left out stays in the journal, replayed at the next start: no recovery on the way out.
        await WaitDrainedAsync();
        _closing = true;
        _commitNow.Set();
        _stagedSignal.Release();
        _committer.Join();
        _committer = null;
    }

    /// <summary>Staged (not yet committed) audience changes matching <paramref name="query"/>, by id.</summary>
    private List<StoredAudienceChange> StagedChanges(AudienceChangeQuery query)
    {
        lock (_stagedGate)
        {
            return [.. _stagedChanges
                .Where(c => c.Key > query.AfterId
                    && (query.AudienceId is null || c.Value.AudienceId == query.AudienceId)
                    && (query.ProfileIds is not { Count: > 0 } profiles || profiles.Contains(c.Value.ProfileId)))
                .Select(c => new StoredAudienceChange(c.Key, c.Value))];
        }
    }
}
