using System.Data.Common;
using System.Diagnostics;
using DuckDB.NET.Data;
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
        public JournalMark? Mark { get; } = mark;

        public Action<TableAppenders> Write { get; } = write;

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
        await drained;
    }

    /// <summary>
    /// After a failed commit: waits for the queue to empty (every item fails), then rebuilds what the engine and the
    /// append bookkeeping hold from what the file has, and asks the journal's indexer to read again from what was
    /// committed (<see cref="_rewindRequired"/>). Call under the write lock.
    /// </summary>
    private async Task RecoverFromFaultAsync()
    {
        if (Volatile.Read(ref _fault) is null) { return; }
        await WaitDrainedAsync();
        lock (_stagedGate)
        {
            _stagedChanges.Clear();
            _fault = null;
        }

        _rewindRequired = true;
        _engine.Clear();
        _messageIds.Clear();
        await LoadMessageIdsAsync(CancellationToken.None);
        _lastSeq = await ScalarAsync<long>("SELECT coalesce(max(seq), 0) FROM events", CancellationToken.None);
        await LoadRawDictionariesAsync(CancellationToken.None);
        _pendingTraitRows = await ScalarAsync<long>("SELECT count(*) FROM profile_trait_updates", CancellationToken.None);
        await RestoreProfilesAsync(CancellationToken.None);
    }

    private void CommitLoop()
    {
        var batch = new List<StagedCommit>();
        var lastStart = 0L;
        while (true)
        {
            _stagedSignal.Wait();
            WaitForCommitInterval(lastStart);
            lastStart = Stopwatch.GetTimestamp();
            batch.Clear();
            lock (_stagedGate)
            {
                // Everything waiting goes into one transaction: under a long commit, the next one takes the backlog at once.
                if (!_closing) { _commitNow.Reset(); }
                while (_staged.TryDequeue(out var item))
                {
                    batch.Add(item);
                    if (batch.Count > 1) { _stagedSignal.Wait(0); }
                }
            }

            if (batch.Count == 0)
            {
                if (_closing) { return; }
                continue;
            }

            Exception? failure = Volatile.Read(ref _fault);
            if (failure is null)
            {
                try
                {
                    if (options.CommitDelay > TimeSpan.Zero) { Thread.Sleep(options.CommitDelay); }
                    options.CommitGate?.WaitOpen();
                    var started = Stopwatch.GetTimestamp();
                    var walBefore = WalSize();
                    CommitBatch(_writer!, batch);

                    // A log shorter after the commit than before it was folded into the file by DuckDB in the commit.
                    var wal = WalSize();
                    var checkpointed = CheckpointPastBound(wal) || wal < walBefore;
                    _metrics.Committed(batch.Sum(b => b.Events), Stopwatch.GetElapsedTime(started).TotalMilliseconds, checkpointed);
                }
                catch (Exception e) when (e is DbException or InvalidOperationException)
                {
                    failure = e is DbException d ? DuckDbErrors.Translate(d, "commit staged appends", options.Path) : e;
                }
            }

            Settle(batch, failure);
        }
    }

    /// <summary>
    /// Writes a batch of staged appends in one transaction. Its <c>COMMIT</c> (which runs DuckDB's checkpoints) goes
    /// through <see cref="WaitingStatement"/>, so the committer does not poll DuckDB's task queue while DuckDB's worker
    /// runs it.
    /// </summary>
    private static void CommitBatch(DuckDBConnection writer, List<StagedCommit> batch)
    {
        Execute(writer, "BEGIN TRANSACTION");
        try
        {
            // One appender per table for every staged append of the batch (TableAppenders).
            using (var tables = new TableAppenders(writer))
            {
                foreach (var item in batch) { item.Write(tables); }
                RecordJournalPositions(tables.Connection, batch);
            }

            WaitingStatement.Run(writer, "COMMIT");
        }
        catch
        {
            RollBackQuietly(writer);
            throw;
        }
    }

    /// <summary>Ends a failed batch's transaction; a commit that failed may have ended it already.</summary>
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
    /// Holds the next commit until <see cref="DuckDbStoreOptions.JournaledCommitInterval"/> has passed since the last one
    /// started, while everything waiting is journaled (durable already, and seen by the engine): so at a low rate the
    /// events of many requests share one commit instead of one each. Under load a commit takes longer than the interval
    /// and nothing waits. Not while closing, nor once an append without the journal waits for its commit.
    /// </summary>
    private void WaitForCommitInterval(long lastStart)
    {
        var left = options.JournaledCommitInterval - Stopwatch.GetElapsedTime(lastStart);
        if (left > TimeSpan.Zero) { _commitNow.Wait(left); }
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
    /// <returns>Whether it checkpointed.</returns>
    private bool CheckpointPastBound(long wal)
    {
        var threshold = options.CheckpointThresholdMb * 1024L * 1024L;
        if (wal < CheckpointBoundFactor * threshold) { return false; }
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
                _stagedEvents -= item.Events;
                _stagedBytes -= item.Bytes;
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
