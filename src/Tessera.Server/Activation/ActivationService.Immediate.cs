using System.Threading.Channels;
using Tessera.Core.Activation;
using Tessera.Storage;
using Tessera.Storage.Activation;
using Tessera.Storage.Audiences;

namespace Tessera.Server.Activation;

/// <summary>
/// Immediate sends: an audience change reaches a plain webhook as soon as the engine makes it, not after its commit
/// and derivation (the embedded store commits behind the engine, and a DuckDB checkpoint holds a commit for seconds).
/// The durable path stays the record: the change is derived into a delivery as before, under the same idempotency key
/// and with the payload that was sent (<see cref="DeliveryDeriver.Immediate"/>); when it is routed, a send that
/// succeeded marks it delivered instead of sending again, and one that failed leaves it to the usual retries.
/// </summary>
/// <remarks>
/// At least once still holds: a crash after an immediate send and before the derivation sends again, with the same key.
/// Not sent early: batching webhooks (they wait for a batch anyway), destinations with a purpose (consent is read
/// from the log with the change) or a frequency cap (counted from the delivery log), email, and events.
/// </remarks>
public sealed partial class ActivationService
{
    private static readonly TimeSpan ImmediateKept = TimeSpan.FromMinutes(10);

    private readonly Channel<IReadOnlyList<StoredAudienceChange>> _stagedChanges =
        Channel.CreateUnbounded<IReadOnlyList<StoredAudienceChange>>(new UnboundedChannelOptions { SingleReader = true });

    private IReadOnlyList<StoredDestination> _immediateTargets = [];
    private DateTimeOffset _immediateTargetsRead = DateTimeOffset.MinValue;
    private int _immediateInFlight;

    private void OnAudienceStaged(IReadOnlyList<StoredAudienceChange> changes) => _stagedChanges.Writer.TryWrite(changes);

    private async Task ImmediateLoopAsync(CancellationToken stoppingToken)
    {
        try
        {
            while (await _stagedChanges.Reader.WaitToReadAsync(stoppingToken))
            {
                IReadOnlyList<StoredDestination> targets;
                try
                {
                    targets = await ImmediateTargetsAsync(stoppingToken);
                }
                catch (Exception e) when (e is StoreException or StoreUnavailableException)
                {
                    // Without the destinations, the changes wait for their derivation like any other.
                    LogStoreProblem(_logger, "read destinations for immediate sends", e);
                    while (_stagedChanges.Reader.TryRead(out _)) { }
                    continue;
                }

                while (_stagedChanges.Reader.TryRead(out var changes))
                {
                    if (targets.Count == 0) { continue; }
                    foreach (var change in changes)
                    {
                        foreach (var target in targets)
                        {
                            if (change.Id > target.AfterChangeId && target.Destination.Segments.Contains(change.Change.AudienceId, StringComparer.Ordinal))
                            {
                                SendImmediately(target.Destination, change);
                            }
                        }
                    }
                }

                ForgetOldImmediateSends();
            }
        }
        catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
        {
            // Stopping: what was not sent early is sent by the durable path.
        }
    }

    private void SendImmediately(Destination destination, StoredAudienceChange change)
    {
        if (Volatile.Read(ref _immediateInFlight) >= _options.MaxImmediateInFlight) { return; }
        if (_deriver.Early(destination, change) is not { Status: DeliveryStatus.Pending } delivery) { return; }
        var sent = new TaskCompletionSource<bool>(TaskCreationOptions.RunContinuationsAsynchronously);
        if (!_deriver.Immediate.TryAdd(delivery.IdempotencyKey, new ImmediateSend(delivery.Payload, sent.Task, _clock.GetUtcNow()))) { return; }
        Interlocked.Increment(ref _immediateInFlight);
        var now = _clock.GetUtcNow();
        var row = new Delivery(0, delivery.DestinationId, delivery.ProfileId, delivery.Kind, delivery.CauseId, delivery.IdempotencyKey, delivery.Payload,
            DeliveryStatus.Pending, null, 0, null, null, now, now, null);
        _ = Task.Run(async () =>
        {
            try
            {
                sent.SetResult((await _webhooks.SendAsync(destination, [row], CancellationToken.None)).Sent);
            }
            catch (Exception e)
            {
                LogSendFailed(_logger, destination.Id, e);
                sent.TrySetResult(false);
            }
            finally
            {
                Interlocked.Decrement(ref _immediateInFlight);
            }
        });
    }

    /// <summary>
    /// Takes out of <paramref name="group"/> the deliveries already sent immediately (recording them delivered); those
    /// whose immediate send failed stay in, to be sent now.
    /// </summary>
    private async Task<List<Delivery>> WithoutImmediateSendsAsync(List<Delivery> group)
    {
        if (_deriver.Immediate.IsEmpty) { return group; }
        var rest = new List<Delivery>(group.Count);
        foreach (var d in group)
        {
            if (!_deriver.Immediate.TryRemove(d.IdempotencyKey, out var early) || !await early.Sent)
            {
                rest.Add(d);
                continue;
            }

            if (await CommittedAsync(d)) { Done(d, DeliveryStatus.Delivered, attempted: true, null, null); }
        }

        return rest;
    }

    /// <summary>Plain webhooks subscribed to audiences: what can be sent before the commit. Re-read every few seconds and after an API change.</summary>
    private async Task<IReadOnlyList<StoredDestination>> ImmediateTargetsAsync(CancellationToken cancellationToken)
    {
        var now = _clock.GetUtcNow();
        if (now - _immediateTargetsRead < DestinationRefresh) { return _immediateTargets; }
        var all = await _store.ListDestinationsAsync(cancellationToken);
        _immediateTargets = [.. all.Where(d => d.Destination is { Enabled: true, Type: DestinationTypes.Webhook, Purpose: null, FrequencyCap: null, Webhook.Batching: null, Segments.Count: > 0 })];
        _immediateTargetsRead = now;
        return _immediateTargets;
    }

    /// <summary>Drops immediate sends never matched by a derivation (their destination changed or was deleted meanwhile).</summary>
    private void ForgetOldImmediateSends()
    {
        var oldest = _clock.GetUtcNow() - ImmediateKept;
        foreach (var (key, send) in _deriver.Immediate)
        {
            if (send.At < oldest && send.Sent.IsCompleted) { _deriver.Immediate.TryRemove(key, out _); }
        }
    }
}
