using System.Diagnostics;
using System.Threading.Channels;
using Tessera.Core.Collection;
using Tessera.Server.Hosting;
using Tessera.Storage;
using Tessera.Storage.Events;

namespace Tessera.Server.Collection;

/// <summary>
/// Group commit: requests hand their events to one writer, which appends everything waiting in one durable
/// commit and then releases every request in it. While one commit runs, the next group gathers, so the commit
/// rate adapts to the load with no timer. A request is answered only after its events are durable.
/// </summary>
public sealed partial class EventWriter(IEventStore store, TesseraOptions options, ILogger<EventWriter> logger) : BackgroundService
{
    private readonly Channel<Pending> _queue = Channel.CreateBounded<Pending>(
        new BoundedChannelOptions(Math.Max(1, options.MaxPendingEvents / 100)) { SingleReader = true, FullMode = BoundedChannelFullMode.Wait });

    private sealed record Pending(IReadOnlyList<CollectedEvent> Events, TaskCompletionSource<AppendResult> Done);

    /// <summary>Waits until <paramref name="events"/> are durable. Throws <see cref="StoreUnavailableException"/> when they are not.</summary>
    public async Task<AppendResult> WriteAsync(IReadOnlyList<CollectedEvent> events, CancellationToken cancellationToken)
    {
        if (events.Count == 0) { return default; }
        var pending = new Pending(events, new TaskCompletionSource<AppendResult>(TaskCreationOptions.RunContinuationsAsynchronously));
        try
        {
            await _queue.Writer.WriteAsync(pending, cancellationToken);
        }
        catch (ChannelClosedException)
        {
            throw new StoreUnavailableException("Tessera is shutting down and takes no more events.");
        }

        // Once queued, the events will be written whatever the caller does, so the wait is not cancelled.
        return await pending.Done.Task;
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
        var events = new List<CollectedEvent>();
        // Not tied to stoppingToken: on shutdown the queue is completed and drained, never dropped.
        while (WaitForWork())
        {
            group.Clear();
            events.Clear();
            while (events.Count < options.MaxEventsPerCommit && _queue.Reader.TryRead(out var next))
            {
                group.Add(next);
                events.AddRange(next.Events);
            }

            var started = Stopwatch.GetTimestamp();
            try
            {
                var result = store.AppendAsync(events, CancellationToken.None).GetAwaiter().GetResult();
                foreach (var pending in group) { pending.Done.TrySetResult(result); }
                LogCommitted(logger, events.Count, group.Count, Stopwatch.GetElapsedTime(started).TotalMilliseconds);
            }
            catch (StoreUnavailableException e)
            {
                // Expected while the database restarts: one line per commit, not a stack trace each.
                LogCommitUnavailable(logger, events.Count, e.Message);
                foreach (var pending in group) { pending.Done.TrySetException(e); }
            }
            catch (Exception e)
            {
                LogCommitFailed(logger, events.Count, e);
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

    [LoggerMessage(EventId = 1003, Level = LogLevel.Warning, Message = "A group commit of {Count} events was refused, the store is unavailable: {Reason}; its requests were answered 503")]
    private static partial void LogCommitUnavailable(ILogger logger, int count, string reason);

    [LoggerMessage(EventId = 1001, Level = LogLevel.Error, Message = "A group commit of {Count} events failed; its requests were answered with an error")]
    private static partial void LogCommitFailed(ILogger logger, int count, Exception exception);
}
