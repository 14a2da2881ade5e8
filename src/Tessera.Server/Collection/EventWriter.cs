using System.Diagnostics;
using System.Threading.Channels;
using Tessera.Core.Collection;
using Tessera.Server.Hosting;
using Tessera.Storage;
using Tessera.Storage.Events;

namespace Tessera.Server.Collection;

/// <summary>
/// Group commit: requests hand their events to one writer, which makes everything waiting durable at once and then
/// releases every request in it. While one commit runs, the next group gathers, so the commit rate adapts to the
/// load with no timer. With the journal on (the default) a group is one journal record and one fsync, and the
/// <see cref="JournalIndexer"/> fills the store behind the answer; with it off, a group is one store commit.
/// Either way a request is answered only after its events are durable.
/// </summary>
public sealed partial class EventWriter(IEventStore store, JournalIndexer indexer, TesseraOptions options, ILogger<EventWriter> logger) : BackgroundService
{
    // A group also stops growing at this many bytes of encoded events (about their JSON's), so one journal record stays
    // well under the record limit whatever the messages' sizes.
    private const long MaxGroupBytes = 8_000_000;

    private readonly Channel<Pending> _queue = Channel.CreateBounded<Pending>(
        new BoundedChannelOptions(Math.Max(1, options.MaxPendingEvents / 100)) { SingleReader = true, FullMode = BoundedChannelFullMode.Wait });

    private sealed record Pending(EncodedEvents Events, TaskCompletionSource Done);

    /// <summary>
    /// Waits until <paramref name="events"/> are durable (the caller keeps them, and may dispose them once this returns). Throws <see cref="StoreUnavailableException"/> when they are
    /// not: the store or the journal failed, Tessera is stopping, or the store is too far behind the journal
    /// (back-pressure past <see cref="TesseraOptions.BackPressureTimeout"/>). A duplicate message is accepted like
    /// any other; the store keeps it once.
    /// </summary>
    public async Task WriteAsync(EncodedEvents events, CancellationToken cancellationToken)
    {
        if (events.Count == 0) { return; }
        await indexer.WaitForRoomAsync(cancellationToken);
        var pending = new Pending(events, new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously));
        try
        {
            await _queue.Writer.WriteAsync(pending, cancellationToken);
        }
        catch (ChannelClosedException)
        {
            throw new StoreUnavailableException("Tessera is shutting down and takes no more events.");
        }

        // Once queued, the events will be written whatever the caller does, so the wait is not cancelled.
        await pending.Done.Task;
    }

    public override async Task StopAsync(CancellationToken cancellationToken)
    {
        _queue.Writer.TryComplete();
        await base.StopAsync(cancellationToken);
    }

    protected override Task ExecuteAsync(CancellationToken stoppingToken)
    {
        // The loop runs on a thread of its own: DuckDB's append and commit (fsync included) are synchronous native
        // calls, and on a thread-pool worker they would hold one of the pool's few threads (two on a 2-core box)
        // away from HTTP requests for every commit. Measured in docs/benchmarks.md.
        var finished = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var thread = new Thread(() =>
        {
            try
            {
                CommitLoop();
                finished.SetResult();
            }
            catch (Exception e)
            {
                finished.SetException(e);
            }
        })
        { IsBackground = true, Name = "Tessera group commit" };
        thread.Start();
        return finished.Task;
    }

    private void CommitLoop()
    {
        var group = new List<Pending>();
        var events = new List<EncodedEvents>();
        var decoded = new List<CollectedEvent>();
        // Not tied to stoppingToken: on shutdown the queue is completed and drained, never dropped.
        while (WaitForWork())
        {
            group.Clear();
            events.Clear();
            long bytes = 0;
            var count = 0;
            while (count < options.MaxEventsPerCommit && bytes < MaxGroupBytes && _queue.Reader.TryRead(out var next))
            {
                group.Add(next);
                events.Add(next.Events);
                count += next.Events.Count;
                bytes += next.Events.Length;
            }

            var started = Stopwatch.GetTimestamp();
            try
            {
                if (indexer.Enabled)
                {
                    indexer.Journal.Append(events);
                    indexer.NotifyAppended();
                    foreach (var pending in group) { pending.Done.TrySetResult(); }
                    LogJournaled(logger, count, group.Count, Stopwatch.GetElapsedTime(started).TotalMilliseconds);
                }
                else
                {
                    decoded.Clear();
                    foreach (var encoded in events) { encoded.DecodeInto(decoded); }
                    store.AppendAsync(decoded, CancellationToken.None).GetAwaiter().GetResult();
                    decoded.Clear();
                    foreach (var pending in group) { pending.Done.TrySetResult(); }
                    LogCommitted(logger, count, group.Count, Stopwatch.GetElapsedTime(started).TotalMilliseconds);
                }
            }
            catch (Exception e) when (e is StoreUnavailableException or Storage.Journal.JournalException)
            {
                // Expected while the database restarts (or the disk is full): one line per commit, not a stack trace each.
                LogCommitUnavailable(logger, count, e.Message);
                // A journal closed under the group because the indexer stopped: the indexer's reason is the one to give.
                var unavailable = indexer.Stopped ? indexer.StoppedException(e)
                    : e as StoreUnavailableException ?? new StoreUnavailableException(e.Message, e);
                foreach (var pending in group) { pending.Done.TrySetException(unavailable); }
            }
            catch (Exception e)
            {
                LogCommitFailed(logger, count, e);
                foreach (var pending in group) { pending.Done.TrySetException(e); }
            }
        }
    }

    private bool WaitForWork()
    {
        var wait = _queue.Reader.WaitToReadAsync(CancellationToken.None);
        return wait.IsCompletedSuccessfully ? wait.Result : wait.AsTask().GetAwaiter().GetResult();
    }

    [LoggerMessage(EventId = 1002, Level = LogLevel.Debug, Message = "Group commit of {Count} events from {Requests} requests took {Milliseconds:F1} ms")]
    private static partial void LogCommitted(ILogger logger, int count, int requests, double milliseconds);

    [LoggerMessage(EventId = 1004, Level = LogLevel.Debug, Message = "Journaled {Count} events from {Requests} requests in {Milliseconds:F1} ms")]
    private static partial void LogJournaled(ILogger logger, int count, int requests, double milliseconds);

    [LoggerMessage(EventId = 1003, Level = LogLevel.Warning, Message = "A group commit of {Count} events was refused: {Reason}; its requests were answered 503")]
    private static partial void LogCommitUnavailable(ILogger logger, int count, string reason);

    [LoggerMessage(EventId = 1001, Level = LogLevel.Error, Message = "A group commit of {Count} events failed; its requests were answered with an error")]
    private static partial void LogCommitFailed(ILogger logger, int count, Exception exception);
}
