using System.Diagnostics;
using Tessera.Core.Collection;
using Tessera.Server.Hosting;
using Tessera.Storage;
using Tessera.Storage.Journal;

namespace Tessera.Server.Collection;

/// <summary>
/// Fills the store from the journal: reads the records the group commit made durable, in order, and appends them
/// with <see cref="IJournalIndexStore.AppendAsync(IReadOnlyList{CollectedEvent}, JournalMark, CancellationToken)"/>
/// (dedup, seqs, profiles, one commit that also records the journal position reached). It also answers the two
/// questions the API asks of it: has the store caught up with what was acknowledged (the read barrier), and is there
/// room for more (back-pressure).
/// </summary>
/// <remarks>
/// At start (<see cref="RecoverAsync"/>, called once the store is open) it replays whatever the journal holds beyond
/// the store's recorded position, before the server takes traffic. A commit that fails is retried with the same
/// events and position until it succeeds; nothing is skipped. On shutdown it runs after the group commit has
/// drained, indexes what is left, and stops; if the host's shutdown timeout cuts it short, the rest stays in the
/// journal for the next start.
/// </remarks>
public sealed partial class JournalIndexer(IJournalIndexStore store, TesseraOptions options, ILogger<JournalIndexer> logger) : IHostedService, IDisposable
{
    private readonly ManualResetEventSlim _appended = new(false);
    private readonly ManualResetEventSlim _stopping = new(false);
    private readonly ManualResetEventSlim _abandon = new(false);
    private readonly AutoResetEvent _trimDue = new(false);
    private Thread? _trimmer;
    private TaskCompletionSource _progress = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private TaskCompletionSource? _finished;
    private EventJournal? _journal;
    private long _indexed;
    private long _applied;
    private string? _lastError;
    private string? _stopReason;
    private volatile bool _stopped;

    /// <summary>True when requests are acknowledged from the journal (<see cref="TesseraOptions.Journal"/>, once recovered).</summary>
    public bool Enabled => _journal is not null;

    public EventJournal Journal => _journal ?? throw new InvalidOperationException("The journal is off or not open yet.");

    /// <summary>The journal position the store holds everything up to.</summary>
    public long Indexed => Volatile.Read(ref _indexed);

    /// <summary>
    /// The journal position the engine has resolved everything up to (profiles, traits, memberships in memory); ahead
    /// of <see cref="Indexed"/> while the store's commit runs behind it.
    /// </summary>
    public long Applied => Volatile.Read(ref _applied);

    /// <summary>Bytes of journal acknowledged but not yet in the store.</summary>
    public long Behind => _journal is { } journal ? journal.End - Indexed : 0;

    /// <summary>
    /// Why the indexer stopped, once <see cref="Stopped"/>; before that, the last store error it is retrying, or null while
    /// it commits fine. A commit that settles after the stop does not clear the reason.
    /// </summary>
    public string? LastError => Volatile.Read(ref _stopReason) ?? Volatile.Read(ref _lastError);

    /// <summary>True once the indexer gave up (a record it cannot read): acknowledged events then wait in the journal for a restart.</summary>
    public bool Stopped => _stopped;

    /// <summary>The Retry-After of every answer once the indexer <see cref="Stopped"/>: it waits for a restart, not for a moment.</summary>
    public const int StoppedRetryAfterSeconds = 30;

    /// <summary>What a request that brings events is told once the indexer <see cref="Stopped"/> (its journal is closed then).</summary>
    public string StoppedMessage =>
        $"The journal indexer stopped: {LastError?.TrimEnd('.')}. Tessera takes no events until it is restarted; every event it acknowledged is in the journal and is indexed at the next start.";

    /// <summary>What a request that brings events fails with once the indexer <see cref="Stopped"/>: its reason, and a retry only after a while.</summary>
    public StoreUnavailableException StoppedException(Exception? cause = null) =>
        new(StoppedMessage, cause) { RetryAfterSeconds = StoppedRetryAfterSeconds };

    /// <summary>
    /// Opens the journal and indexes what it holds beyond the store's recorded position. With the journal off, a
    /// journal left by an earlier run is still replayed (then closed), so turning it off never strands events.
    /// </summary>
    public async Task RecoverAsync(CancellationToken cancellationToken)
    {
        var directory = options.JournalPath;
        if (!options.Journal && !Directory.Exists(directory)) { return; }
        var journal = EventJournal.Open(directory, options.JournalSegmentBytes);
        try
        {
            if (journal.Repair is { } repair) { LogRepaired(logger, repair.File, repair.Offset, repair.BytesDropped, repair.Reason); }
            var recorded = await store.GetJournalPositionAsync(journal.Id, cancellationToken);
            var from = recorded ?? journal.Start;
            if (from > journal.End)
            {
                throw new JournalException(
                    $"{journal.Directory}: the store records this journal ({journal.Id}) indexed up to position {from}, but the journal ends at {journal.End}: " +
                    "its last segment lost records the store already holds (restored from an older copy?). Move the journal directory aside to start a new journal.");
            }

            if (from < journal.Start)
            {
                // The store knows less than the journal has deleted (a store restored from a backup, or a new store): replay what is left.
                LogStartsBeforeJournal(logger, from, journal.Start);
                from = journal.Start;
            }

            SetIndexedAndApplied(from);
            var started = Stopwatch.GetTimestamp();
            var chunk = new List<CollectedEvent>();
            long replayed = 0;
            using (var reader = journal.OpenReader(from))
            {
                while (ReadChunk(reader, journal.End, chunk, options.MaxEventsPerCommit))
                {
                    await store.AppendAsync(chunk, new JournalMark(journal.Id, reader.Position), cancellationToken);
                    replayed += chunk.Count;
                    SetIndexedAndApplied(reader.Position);
                }
            }

            journal.DeleteBefore(Indexed);
            LogRecovered(logger, journal.Directory, replayed, journal.End - from, Stopwatch.GetElapsedTime(started).TotalMilliseconds);
        }
        catch
        {
            journal.Dispose();
            throw;
        }

        if (!options.Journal)
        {
            journal.Dispose();
            return;
        }

        _journal = journal;
    }

    /// <summary>The group commit calls this after each record it made durable.</summary>
    public void NotifyAppended() => _appended.Set();

    /// <summary>
    /// Waits until the store holds everything acknowledged when the call was made; false after <paramref name="timeout"/>.
    /// Immediate when the journal is off (a 200 then already means "in the store") or the store has caught up.
    /// </summary>
    public Task<bool> WaitForAcknowledgedAsync(TimeSpan timeout, CancellationToken cancellationToken)
    {
        if (_journal is not { } journal) { return Task.FromResult(true); }
        // The end as it is now, not as it moves: under steady load the store is always a little behind the latest answer.
        var acknowledged = journal.End;
        return Indexed >= acknowledged ? Task.FromResult(true) : WaitPromptingAsync(acknowledged, timeout, cancellationToken);
    }

    /// <summary>Waits for the store to commit up to <paramref name="acknowledged"/>, asking it not to hold its commits open for more meanwhile.</summary>
    private async Task<bool> WaitPromptingAsync(long acknowledged, TimeSpan timeout, CancellationToken cancellationToken)
    {
        using var prompt = store.PromptCommits();
        return await WaitUntilAsync(() => Indexed >= acknowledged, timeout, cancellationToken);
    }

    /// <summary>
    /// As <see cref="WaitForAcknowledgedAsync"/>, for reads served from the engine's memory: waits only until the engine
    /// has resolved everything acknowledged, not for the store's commit.
    /// </summary>
    public Task<bool> WaitForAppliedAsync(TimeSpan timeout, CancellationToken cancellationToken)
    {
        if (_journal is not { } journal) { return Task.FromResult(true); }
        var acknowledged = journal.End;
        return WaitUntilAsync(() => Applied >= acknowledged, timeout, cancellationToken);
    }

    /// <summary>Recovery appends and commits in one step: what it indexed is applied too (<see cref="Applied"/> is never behind <see cref="Indexed"/>).</summary>
    private void SetIndexedAndApplied(long position)
    {
        Volatile.Write(ref _indexed, position);
        Volatile.Write(ref _applied, position);
    }

    /// <summary>
    /// Back-pressure: waits while the store is more than <see cref="TesseraOptions.MaxIndexBacklogBytes"/> behind; 503 past
    /// the timeout, and at once when the indexer stopped.
    /// </summary>
    public async Task WaitForRoomAsync(CancellationToken cancellationToken)
    {
        if (_stopped) { throw StoppedException(); }
        if (_journal is not { } journal || journal.End - Indexed <= options.MaxIndexBacklogBytes) { return; }
        if (!await WaitUntilAsync(() => journal.End - Indexed <= options.MaxIndexBacklogBytes, options.BackPressureTimeout, cancellationToken))
        {
            throw new StoreUnavailableException(
                $"the store is {Behind / 1e6:F1} MB of acknowledged events behind (the bound is {options.MaxIndexBacklogBytes / 1e6:F1} MB) and did not catch up within {options.BackPressureTimeout.TotalSeconds:F1} s{(LastError is { } error ? $"; it reports: {error}" : "")}.");
        }
    }

    public Task StartAsync(CancellationToken cancellationToken)
    {
        if (_journal is not { } journal) { return Task.CompletedTask; }
        _finished = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        // Indexed segments are deleted on a thread of their own: a deletion takes tens of ms, and the commits' settling
        // runs on the thread pool, whose few threads serve HTTP (docs/benchmarks.md, "The stalls of the 200s").
        _trimmer = new Thread(() => TrimLoop(journal)) { IsBackground = true, Name = "Tessera segment trimmer" };
        _trimmer.Start();
        // A thread of its own, as the group commit's: DuckDB's append and commit are synchronous native calls that
        // would hold one of the thread pool's few threads away from HTTP for the length of every commit.
        var thread = new Thread(() =>
        {
            try
            {
                BackgroundPriority.Apply(options.BackgroundNice);
                IndexLoop(journal);
                _finished.SetResult();
            }
            catch (Exception e)
            {
                // A record that fails its checks mid-run (the disk changed under us): stop here rather than skip it.
                Volatile.Write(ref _stopReason, e.Message);
                _stopped = true;
                LogLoopFailed(logger, e);
                _finished.SetResult();
            }
            finally
            {
                journal.Dispose();
            }
        })
        { IsBackground = true, Name = "Tessera journal indexer" };
        thread.Start();
        return Task.CompletedTask;
    }

    /// <summary>Called after the group commit stopped: indexes what is left, unless the host's shutdown timeout runs out first.</summary>
    public async Task StopAsync(CancellationToken cancellationToken)
    {
        _stopping.Set();
        _trimmer?.Join();
        if (_finished is null)
        {
            _journal?.Dispose();
            return;
        }

        await using (cancellationToken.Register(() => _abandon.Set()))
        {
            try
            {
                await _finished.Task.WaitAsync(cancellationToken);
                LogDrained(logger, Indexed);
            }
            catch (OperationCanceledException)
            {
                LogAbandoned(logger, Behind);
            }
        }
    }

    public void Dispose()
    {
        _trimDue.Dispose();
        _appended.Dispose();
        _stopping.Dispose();
        _abandon.Dispose();
    }

    private void IndexLoop(EventJournal journal)
    {
        var chunk = new List<CollectedEvent>();
        var chunkEvents = store.JoinsStagedAppends ? options.IndexChunkEvents : options.MaxEventsPerCommit;
        var reader = journal.OpenReader(Indexed);
        Volatile.Write(ref _applied, Indexed);
        var lastCommit = Task.CompletedTask;
        var waitFor = new[] { _appended.WaitHandle, _stopping.WaitHandle };
        try
        {
            while (!_abandon.IsSet)
            {
                // Reset before reading the end: an append after this point sets the event again, so none is missed.
                _appended.Reset();
                var faulted = lastCommit.IsFaulted;
                if (!faulted && !ReadChunk(reader, journal.End, chunk, chunkEvents))
                {
                    if (!lastCommit.IsCompleted) { WaitHandle.WaitAny([((IAsyncResult)lastCommit).AsyncWaitHandle, _stopping.WaitHandle, _appended.WaitHandle]); continue; }
                    if (_stopping.IsSet) { return; }
                    WaitHandle.WaitAny(waitFor);
                    continue;
                }

                if (faulted) { chunk.Clear(); }
                if (options.IndexerDelay > TimeSpan.Zero && !faulted) { _stopping.Wait(options.IndexerDelay); }
                var started = Stopwatch.GetTimestamp();
                var position = reader.Position;
                switch (Stage(chunk, new JournalMark(journal.Id, position), out var staged, out var rewindTo))
                {
                    case StageOutcome.Abandoned:
                        return;
                    case StageOutcome.Rewound:
                        // A commit failed and the store went back to what it committed: read again from there.
                        reader.Dispose();
                        AdvanceIndexed(rewindTo);
                        reader = journal.OpenReader(Indexed);
                        Volatile.Write(ref _applied, Indexed);
                        lastCommit = Task.CompletedTask;
                        continue;
                }

                Volatile.Write(ref _applied, position);
                lastCommit = staged!.Committed;
                _ = lastCommit.ContinueWith(t => Committed(t, position), CancellationToken.None, TaskContinuationOptions.ExecuteSynchronously, TaskScheduler.Default);
                LogIndexed(logger, chunk.Count, Stopwatch.GetElapsedTime(started).TotalMilliseconds, journal.End - position);

                // Wakes the reads that need the engine only (profiles, memberships).
                Interlocked.Exchange(ref _progress, new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously)).TrySetResult();
            }
        }
        finally
        {
            reader.Dispose();
        }
    }

    /// <summary>A staged chunk's commit settled: the store now holds it (reads of the tables may go on), or it failed (the loop rewinds).</summary>
    private void Committed(Task commit, long position)
    {
        if (commit.IsCompletedSuccessfully)
        {
            AdvanceIndexed(position);
            Volatile.Write(ref _lastError, null);
            try
            {
                if (_journal is { } journal && journal.HasSegmentsBefore(Indexed)) { _trimDue.Set(); }
            }
            catch (ObjectDisposedException)
            {
                // A commit that settled after the indexer was disposed: the next start deletes what is indexed.
            }
        }
        else
        {
            Volatile.Write(ref _lastError, commit.Exception?.GetBaseException().Message);
            _appended.Set();
        }

        Interlocked.Exchange(ref _progress, new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously)).TrySetResult();
    }

    /// <summary>Deletes the journal's indexed segments whenever a commit makes one whole segment indexed, until the indexer stops.</summary>
    private void TrimLoop(EventJournal journal)
    {
        var waitFor = new[] { _trimDue, _stopping.WaitHandle };
        try
        {
            while (WaitHandle.WaitAny(waitFor) == 0)
            {
                try
                {
                    journal.DeleteBefore(Indexed, paced: true);
                }
                catch (Exception e) when (e is IOException or UnauthorizedAccessException)
                {
                    LogDeleteFailed(logger, e.Message);
                }
            }
        }
        catch (ObjectDisposedException)
        {
            // Disposed without a stop (a host that failed to start): nothing left to delete for.
        }
    }

    private void AdvanceIndexed(long position)
    {
        var current = Volatile.Read(ref _indexed);
        while (position > current)
        {
            var seen = Interlocked.CompareExchange(ref _indexed, position, current);
            if (seen == current) { return; }
            current = seen;
        }
    }

    private enum StageOutcome { Staged, Rewound, Abandoned }

    /// <summary>Reads whole records up to <paramref name="limit"/> until the chunk holds <paramref name="events"/> events; false when there was nothing.</summary>
    private static bool ReadChunk(JournalReader reader, long limit, List<CollectedEvent> chunk, int events)
    {
        chunk.Clear();
        while (chunk.Count < events && reader.TryRead(limit, chunk)) { }
        return chunk.Count > 0;
    }

    /// <summary>
    /// Hands the chunk to the store (resolved in memory now, committed behind), retrying the same events and position
    /// until it is taken; <see cref="StageOutcome.Rewound"/> when an earlier commit had failed and the store went back
    /// to <paramref name="rewindTo"/>; <see cref="StageOutcome.Abandoned"/> when shutdown gave up.
    /// </summary>
    private StageOutcome Stage(List<CollectedEvent> chunk, JournalMark mark, out StagedAppend? staged, out long rewindTo)
    {
        staged = null;
        rewindTo = Indexed;
        for (var attempt = 0; ; attempt++)
        {
            try
            {
                staged = store.StageAsync(chunk, mark, CancellationToken.None).GetAwaiter().GetResult();
                if (attempt > 0) { LogRecoveredCommit(logger, attempt); }
                return StageOutcome.Staged;
            }
            catch (StoreRewoundException e)
            {
                LogRewound(logger, e.InnerException?.Message ?? e.Message, e.CommittedPosition ?? Indexed);
                rewindTo = e.CommittedPosition ?? Indexed;
                return StageOutcome.Rewound;
            }
            catch (Exception e) when (e is not OutOfMemoryException)
            {
                Volatile.Write(ref _lastError, e.Message);
                if (e is StoreUnavailableException) { LogCommitUnavailable(logger, chunk.Count, e.Message); }
                else { LogCommitFailed(logger, chunk.Count, e); }
            }

            // 0.1 s, 0.2 s, ... up to 5 s between tries; shutdown's timeout ends the wait (the events stay in the journal).
            if (_abandon.Wait(TimeSpan.FromMilliseconds(Math.Min(5000, 100 << Math.Min(attempt, 6))))) { return StageOutcome.Abandoned; }
        }
    }

    private async Task<bool> WaitUntilAsync(Func<bool> done, TimeSpan timeout, CancellationToken cancellationToken)
    {
        var deadline = Stopwatch.GetTimestamp() + (long)(timeout.TotalSeconds * Stopwatch.Frequency);
        while (true)
        {
            var progress = Volatile.Read(ref _progress).Task;
            if (done()) { return true; }
            var remaining = Stopwatch.GetElapsedTime(Stopwatch.GetTimestamp(), deadline);
            if (remaining <= TimeSpan.Zero) { return false; }
            try
            {
                await progress.WaitAsync(remaining, cancellationToken);
            }
            catch (TimeoutException)
            {
                return done();
            }
        }
    }

    [LoggerMessage(EventId = 1101, Level = LogLevel.Warning, Message = "Journal {File}: cut off {Bytes} bytes from offset {Offset}, a record torn by a crash during its write ({Reason}); it was never acknowledged")]
    private static partial void LogRepaired(ILogger logger, string file, long offset, long bytes, string reason);

    [LoggerMessage(EventId = 1102, Level = LogLevel.Information, Message = "Journal {Directory}: replayed {Events} events ({Bytes} bytes) into the store in {Milliseconds:F0} ms")]
    private static partial void LogRecovered(ILogger logger, string directory, long events, long bytes, double milliseconds);

    [LoggerMessage(EventId = 1103, Level = LogLevel.Warning, Message = "The store records journal position {Recorded}, before the oldest segment kept ({Start}); replaying from there")]
    private static partial void LogStartsBeforeJournal(ILogger logger, long recorded, long start);

    [LoggerMessage(EventId = 1104, Level = LogLevel.Debug, Message = "Indexed {Count} events in {Milliseconds:F1} ms; {Behind} bytes of journal behind")]
    private static partial void LogIndexed(ILogger logger, int count, double milliseconds, long behind);

    [LoggerMessage(EventId = 1105, Level = LogLevel.Warning, Message = "Indexing {Count} events from the journal was refused, the store is unavailable: {Reason}; retrying")]
    private static partial void LogCommitUnavailable(ILogger logger, int count, string reason);

    [LoggerMessage(EventId = 1106, Level = LogLevel.Error, Message = "Indexing {Count} events from the journal failed; retrying the same events")]
    private static partial void LogCommitFailed(ILogger logger, int count, Exception exception);

    [LoggerMessage(EventId = 1107, Level = LogLevel.Information, Message = "Indexing from the journal resumed after {Attempts} failed attempts")]
    private static partial void LogRecoveredCommit(ILogger logger, int attempts);

    [LoggerMessage(EventId = 1108, Level = LogLevel.Warning, Message = "Could not delete an indexed journal segment: {Reason}")]
    private static partial void LogDeleteFailed(ILogger logger, string reason);

    [LoggerMessage(EventId = 1109, Level = LogLevel.Information, Message = "Journal indexed up to position {Position}; the store holds every acknowledged event")]
    private static partial void LogDrained(ILogger logger, long position);

    [LoggerMessage(EventId = 1110, Level = LogLevel.Warning, Message = "Shutdown timeout: {Bytes} bytes of journal not yet indexed stay in the journal and are replayed at the next start")]
    private static partial void LogAbandoned(ILogger logger, long bytes);

    [LoggerMessage(EventId = 1112, Level = LogLevel.Warning, Message = "A commit behind the engine failed ({Reason}); the store was restored to what it committed and indexing resumes from journal position {Position}")]
    private static partial void LogRewound(ILogger logger, string reason, long position);

    [LoggerMessage(EventId = 1111, Level = LogLevel.Critical, Message = "The journal indexer stopped; acknowledged events are kept in the journal and replayed at the next start")]
    private static partial void LogLoopFailed(ILogger logger, Exception exception);
}
