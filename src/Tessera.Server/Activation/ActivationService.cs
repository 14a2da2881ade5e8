using System.Collections.Concurrent;
using System.Threading.Channels;
using Tessera.Core.Activation;
using Tessera.Server.Hosting;
using Tessera.Storage;
using Tessera.Storage.Activation;

namespace Tessera.Server.Activation;

/// <summary>
/// Moves deliveries from the logs to the destinations:
/// <list type="number">
/// <item>derive: after each commit that recorded audience changes or events (and every half second), the store
/// turns what is past the cursor into deliveries, in the same transaction that moves the cursor;</item>
/// <item>send: each destination has a queue (batches gather there up to their size or wait); requests go out with
/// at most <see cref="ActivationOptions.MaxConcurrencyPerDestination"/> in flight;</item>
/// <item>record: outcomes are written in groups; a failure schedules the next attempt (exponential backoff with
/// jitter) or, after the last, makes the delivery a dead letter;</item>
/// <item>claim: due retries, and deliveries whose claim expired (a crashed process's), are claimed and queued.</item>
/// </list>
/// At-least-once: a delivery is marked delivered only after the receiver answered 2xx; a crash before that leaves
/// it pending, and it is sent again with the same idempotency key.
/// </summary>
public sealed partial class ActivationService : BackgroundService
{
    private static readonly TimeSpan DeriveInterval = TimeSpan.FromMilliseconds(500);
    private static readonly TimeSpan DestinationRefresh = TimeSpan.FromSeconds(5);

    private readonly ITesseraStore _store;
    private readonly ActivationOptions _options;
    private readonly TimeProvider _clock;
    private readonly ILogger<ActivationService> _logger;
    private readonly DeliveryDeriver _deriver;
    private readonly HttpClient _http;
    private readonly WebhookChannel _webhooks;
    private readonly EmailChannel _email;
    private readonly SegmentChannel _segment;
    private readonly FileExportChannel _files;
    private readonly Channel<bool> _deriveSignal = Channel.CreateBounded<bool>(new BoundedChannelOptions(1) { FullMode = BoundedChannelFullMode.DropWrite });
    private readonly Channel<DeliveryOutcome> _outcomes = Channel.CreateUnbounded<DeliveryOutcome>(new UnboundedChannelOptions { SingleReader = true });
    private readonly ConcurrentDictionary<long, byte> _inFlight = new();
    private readonly ConcurrentDictionary<long, Task<bool>> _committed = new();
    private readonly ConcurrentDictionary<string, DestinationQueue> _queues = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, (Destination? Destination, DateTimeOffset Read)> _destinations = new(StringComparer.Ordinal);
    private CancellationToken _stopping;

    public ActivationService(ITesseraStore store, TesseraOptions options, TimeProvider clock, ILogger<ActivationService> logger)
    {
        _store = store;
        _options = options.Activation;
        _clock = clock;
        _logger = logger;
        _deriver = new DeliveryDeriver(() => store.Engine, clock);
        _http = new HttpClient(new SocketsHttpHandler
        {
            AllowAutoRedirect = false,
            PooledConnectionLifetime = TimeSpan.FromMinutes(2),
            MaxConnectionsPerServer = Math.Max(2, _options.MaxConcurrencyPerDestination * 2),
        })
        { Timeout = Timeout.InfiniteTimeSpan };
        _http.DefaultRequestHeaders.UserAgent.ParseAdd("Tessera-Webhooks/1.0");
        var http = new HttpDelivery(_http, _options);
        _webhooks = new WebhookChannel(http);
        _email = new EmailChannel(_options);
        _segment = new SegmentChannel(http);
        _files = new FileExportChannel(store, clock);
    }

    /// <summary>This process's name on the claims it takes.</summary>
    public string Owner { get; } = $"{Environment.MachineName}/{Environment.ProcessId}/{Guid.NewGuid().ToString("N")[..8]}";

    /// <summary>Called by the API after a destination changed, so sends use its new settings at once.</summary>
    public void Forget(string destinationId)
    {
        _destinations.TryRemove(destinationId, out _);
        _immediateTargetsRead = DateTimeOffset.MinValue;
    }

    /// <summary>Asks for a derivation now (after a commit).</summary>
    public void Wake() => _deriveSignal.Writer.TryWrite(true);

    /// <summary>The wait before attempt <paramref name="attempts"/> + 1: min(first × 2^(attempts-1), max), jittered to between half and all of it.</summary>
    public static TimeSpan RetryDelay(ActivationOptions options, int attempts)
    {
        var full = Math.Min(options.MaxRetryDelay.TotalMilliseconds, options.FirstRetryDelay.TotalMilliseconds * Math.Pow(2, Math.Min(attempts - 1, 40)));
        return TimeSpan.FromMilliseconds(full / 2 + (Random.Shared.NextDouble() * full / 2));
    }

    public override void Dispose()
    {
        _http.Dispose();
        foreach (var queue in _queues.Values) { queue.Dispose(); }
        base.Dispose();
    }

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        if (!_options.Enabled) { return; }
        _stopping = stoppingToken;
        try
        {
            // The embedded store belongs to this process alone: whatever a previous run had claimed is free again.
            await _store.ReleaseClaimsAsync(_store.Kind == "duckdb" ? null : Owner, stoppingToken);
        }
        catch (Exception e) when (e is StoreException or StoreUnavailableException)
        {
            LogStoreProblem(_logger, "release claims", e);
        }

        _store.AudienceChanged += OnAudienceChanged;
        _store.Appended += Wake;
        if (_options.SendBeforeCommit) { _store.AudienceStaged += OnAudienceStaged; }
        try
        {
            var record = Task.Run(() => RecordLoopAsync(), CancellationToken.None);
            await Task.WhenAll(
                Task.Run(() => DeriveLoopAsync(stoppingToken), CancellationToken.None),
                Task.Run(() => ClaimLoopAsync(stoppingToken), CancellationToken.None),
                Task.Run(() => ImmediateLoopAsync(stoppingToken), CancellationToken.None));
            // Stopping: let what is in flight finish (its requests are bounded by the request timeout), then record it.
            await Task.WhenAll(_queues.Values.Select(q => q.DrainAsync()));
            _outcomes.Writer.TryComplete();
            await record;
            // What still waited in a queue was never sent: let it go now rather than when the claims expire.
            await _store.ReleaseClaimsAsync(Owner, CancellationToken.None);
        }
        catch (Exception e) when (e is StoreException or StoreUnavailableException)
        {
            LogStoreProblem(_logger, "release claims", e);
        }
        finally
        {
            _store.AudienceChanged -= OnAudienceChanged;
            _store.Appended -= Wake;
            _store.AudienceStaged -= OnAudienceStaged;
        }
    }

    private void OnAudienceChanged(IReadOnlyList<Core.Audiences.AudienceChange> changes) => Wake();

    private async Task DeriveLoopAsync(CancellationToken stoppingToken)
    {
        while (!stoppingToken.IsCancellationRequested)
        {
            try
            {
                using (var wait = CancellationTokenSource.CreateLinkedTokenSource(stoppingToken))
                {
                    wait.CancelAfter(DeriveInterval);
                    try
                    {
                        await _deriveSignal.Reader.ReadAsync(wait.Token);
                    }
                    catch (OperationCanceledException) when (!stoppingToken.IsCancellationRequested)
                    {
                        // The interval passed: derive anyway (another process's commits raise no signal here).
                    }
                }

                while (!stoppingToken.IsCancellationRequested)
                {
                    var now = _clock.GetUtcNow();
                    var result = await DeriveAsync(new DeliveryClaim(Owner, now, now + _options.ClaimLease), stoppingToken);
                    if (result.Busy)
                    {
                        await Task.Delay(TimeSpan.FromMilliseconds(50), stoppingToken);
                        continue;
                    }

                    if (!result.More) { break; }
                }
            }
            catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
            {
                return;
            }
            catch (Exception e)
            {
                // Nothing was written and the cursor did not move: the same step is derived again.
                LogStoreProblem(_logger, "derive deliveries", e);
                await DelayQuietlyAsync(TimeSpan.FromSeconds(1), stoppingToken);
            }
        }
    }

    /// <summary>
    /// One derivation step. Its deliveries are sent as soon as they are written, while the step commits (that commit
    /// waits for the disk, and on the embedded store for any checkpoint in progress); their outcomes are recorded
    /// only once the commit succeeded. Should it fail, the outcomes are dropped and the step is derived again.
    /// </summary>
    private async Task<DerivationResult> DeriveAsync(DeliveryClaim claim, CancellationToken stoppingToken)
    {
        var committed = new TaskCompletionSource<bool>(TaskCreationOptions.RunContinuationsAsynchronously);
        IReadOnlyList<Delivery> early = [];
        try
        {
            var result = await _store.DeriveDeliveriesAsync(_deriver, claim, pending =>
            {
                early = pending;
                foreach (var delivery in pending)
                {
                    _committed[delivery.Id] = committed.Task;
                    Route(delivery);
                }
            }, stoppingToken);
            committed.SetResult(true);
            return result;
        }
        catch
        {
            foreach (var delivery in early)
            {
                _inFlight.TryRemove(delivery.Id, out _);
                _committed.TryRemove(new KeyValuePair<long, Task<bool>>(delivery.Id, committed.Task));
            }

            committed.SetResult(false);
            throw;
        }
    }

    private async Task ClaimLoopAsync(CancellationToken stoppingToken)
    {
        while (!stoppingToken.IsCancellationRequested)
        {
            await DelayQuietlyAsync(_options.PollInterval, stoppingToken);
            try
            {
                while (!stoppingToken.IsCancellationRequested && _inFlight.Count < _options.MaxInFlight)
                {
                    var now = _clock.GetUtcNow();
                    var limit = Math.Min(1000, _options.MaxInFlight - _inFlight.Count);
                    var claimed = await _store.ClaimDueDeliveriesAsync(new DeliveryClaim(Owner, now, now + _options.ClaimLease), limit, stoppingToken);
                    foreach (var delivery in claimed) { Route(delivery); }
                    if (claimed.Count < limit) { break; }
                }
            }
            catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
            {
                return;
            }
            catch (Exception e)
            {
                LogStoreProblem(_logger, "claim due deliveries", e);
            }
        }
    }

    /// <summary>Writes outcomes in groups; when the store refuses, keeps them and tries again (the claims hold meanwhile).</summary>
    private async Task RecordLoopAsync()
    {
        var group = new List<DeliveryOutcome>();
        while (await _outcomes.Reader.WaitToReadAsync(CancellationToken.None))
        {
            while (group.Count < 10_000 && _outcomes.Reader.TryRead(out var outcome)) { group.Add(outcome); }
            try
            {
                await _store.RecordOutcomesAsync(Owner, group, CancellationToken.None);
                foreach (var o in group) { _inFlight.TryRemove(o.Id, out _); }
                group.Clear();
            }
            catch (Exception e) when (e is StoreException or StoreUnavailableException or InvalidOperationException)
            {
                LogStoreProblem(_logger, "record delivery outcomes", e);
                if (_stopping.IsCancellationRequested && _outcomes.Reader.Completion.IsCompleted) { return; }
                await Task.Delay(TimeSpan.FromSeconds(1), CancellationToken.None);
            }
        }
    }

    private void Route(Delivery delivery)
    {
        if (!_inFlight.TryAdd(delivery.Id, 0)) { return; }
        _queues.GetOrAdd(delivery.DestinationId, id => new DestinationQueue(this, id)).Add(delivery);
    }

    private async Task<Destination?> DestinationAsync(string id)
    {
        var now = _clock.GetUtcNow();
        if (_destinations.TryGetValue(id, out var cached) && now - cached.Read < DestinationRefresh) { return cached.Destination; }
        var stored = await _store.GetDestinationAsync(id, CancellationToken.None);
        _destinations[id] = (stored?.Destination, now);
        return stored?.Destination;
    }

    /// <summary>Sends one group (a batch, or one delivery) and queues its outcomes.</summary>
    private async Task SendAsync(string destinationId, List<Delivery> group)
    {
        Destination? destination;
        try
        {
            destination = await DestinationAsync(destinationId);
        }
        catch (Exception e) when (e is StoreException or StoreUnavailableException)
        {
            // Cannot tell where to send: release without an attempt; the claim expires and it is tried again.
            LogStoreProblem(_logger, "read destination", e);
            foreach (var d in group)
            {
                if (await CommittedAsync(d)) { Done(d, DeliveryStatus.Pending, attempted: false, "store unavailable", _clock.GetUtcNow() + _options.PollInterval); }
            }

            return;
        }

        if (destination is null)
        {
            foreach (var d in group)
            {
                if (await CommittedAsync(d)) { Done(d, DeliveryStatus.Cancelled, attempted: false, "destination deleted", null); }
            }

            return;
        }

        group = await WithoutImmediateSendsAsync(group);
        if (group.Count == 0) { return; }
        IReadOnlyList<SendResult> results;
        try
        {
            results = destination.Type switch
            {
                DestinationTypes.Email => await _email.SendAsync(destination, group, CancellationToken.None),
                DestinationTypes.Segment => await _segment.SendAsync(destination, group, CancellationToken.None),
                DestinationTypes.File => await _files.RunAsync(destination, group, CancellationToken.None),
                _ => [.. Enumerable.Repeat(await _webhooks.SendAsync(destination, group, CancellationToken.None), group.Count)],
            };
        }
        catch (Exception e)
        {
            LogSendFailed(_logger, destinationId, e);
            results = [.. group.Select(_ => SendResult.Failed(e.Message))];
        }

        for (var i = 0; i < group.Count; i++)
        {
            var (d, r) = (group[i], results[i]);
            if (!await CommittedAsync(d)) { continue; }

            if (r.Sent)
            {
                Done(d, DeliveryStatus.Delivered, attempted: true, null, null, r.Record);
            }
            else if (r.Permanent || d.Attempts + 1 >= _options.MaxAttempts)
            {
                var why = r.Permanent ? r.Error : $"{r.Error} (attempt {d.Attempts + 1} of {_options.MaxAttempts}; no more retries)";
                Done(d, DeliveryStatus.Dead, attempted: true, why, null);
            }
            else
            {
                Done(d, DeliveryStatus.Pending, attempted: true, r.Error, _clock.GetUtcNow() + RetryDelay(_options, d.Attempts + 1));
            }
        }
    }

    /// <summary>False when the delivery was sent while its derivation was committing and that commit failed (then it does not exist).</summary>
    private async Task<bool> CommittedAsync(Delivery delivery)
    {
        if (!_committed.TryGetValue(delivery.Id, out var commit)) { return true; }
        var stored = await commit;
        _committed.TryRemove(new KeyValuePair<long, Task<bool>>(delivery.Id, commit));
        return stored;
    }

    private void Done(Delivery delivery, string status, bool attempted, string? error, DateTimeOffset? next, string? record = null) =>
        _outcomes.Writer.TryWrite(new DeliveryOutcome(delivery.Id, delivery.IdempotencyKey, status, attempted, error, next, _clock.GetUtcNow(), record));

    private static async Task DelayQuietlyAsync(TimeSpan delay, CancellationToken cancellationToken)
    {
        try
        {
            await Task.Delay(delay, cancellationToken);
        }
        catch (OperationCanceledException)
        {
            // Stopping.
        }
    }

    /// <summary>
    /// One destination's deliveries waiting to be sent. A batching webhook's queue gathers up to its batch size,
    /// waiting at most its max wait after the first; email sends up to 50 per SMTP connection; otherwise each
    /// delivery is its own request. At most <see cref="ActivationOptions.MaxConcurrencyPerDestination"/> groups are in flight.
    /// </summary>
    private sealed class DestinationQueue : IDisposable
    {
        private readonly ActivationService _service;
        private readonly string _id;
        private readonly Channel<Delivery> _waiting = Channel.CreateUnbounded<Delivery>(new UnboundedChannelOptions { SingleReader = true });
        private readonly SemaphoreSlim _slots;
        private readonly ConcurrentDictionary<Task, byte> _sending = new();
        private readonly Task _loop;

        public DestinationQueue(ActivationService service, string id)
        {
            _service = service;
            _id = id;
            _slots = new SemaphoreSlim(Math.Max(1, service._options.MaxConcurrencyPerDestination));
            _loop = Task.Run(LoopAsync);
        }

        public void Add(Delivery delivery) => _waiting.Writer.TryWrite(delivery);

        public void Dispose() => _slots.Dispose();

        /// <summary>On stop: what waits stays claimed (sent again after the claim expires or at the next start); what is in flight finishes.</summary>
        public async Task DrainAsync()
        {
            _waiting.Writer.TryComplete();
            await _loop;
            await Task.WhenAll(_sending.Keys);
        }

        private async Task LoopAsync()
        {
            var stopping = _service._stopping;
            try
            {
                while (await _waiting.Reader.WaitToReadAsync(stopping))
                {
                    var (size, wait) = await ShapeAsync();
                    var group = new List<Delivery>(Math.Min(size, 1024));
                    var deadline = _service._clock.GetUtcNow() + wait;
                    while (group.Count < size)
                    {
                        if (_waiting.Reader.TryRead(out var next))
                        {
                            group.Add(next);
                            continue;
                        }

                        var left = deadline - _service._clock.GetUtcNow();
                        if (group.Count > 0 && left <= TimeSpan.Zero) { break; }
                        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(stopping);
                        timeout.CancelAfter(left > TimeSpan.Zero ? left : TimeSpan.FromMilliseconds(1));
                        try
                        {
                            if (!await _waiting.Reader.WaitToReadAsync(timeout.Token)) { break; }
                        }
                        catch (OperationCanceledException) when (!stopping.IsCancellationRequested)
                        {
                            break;
                        }
                    }

                    if (group.Count == 0) { continue; }
                    await _slots.WaitAsync(stopping);
                    var send = Task.Run(async () =>
                    {
                        try
                        {
                            await _service.SendAsync(_id, group);
                        }
                        finally
                        {
                            _slots.Release();
                        }
                    });
                    _sending[send] = 0;
                    _ = send.ContinueWith(t => _sending.TryRemove(t, out _), TaskScheduler.Default);
                }
            }
            catch (OperationCanceledException) when (stopping.IsCancellationRequested)
            {
                // Stopping: deliveries still waiting keep their claims and are sent by the next run.
            }
        }

        /// <summary>How many deliveries one request carries and how long to wait for them.</summary>
        private async Task<(int Size, TimeSpan Wait)> ShapeAsync()
        {
            Destination? destination = null;
            try
            {
                destination = await _service.DestinationAsync(_id);
            }
            catch (Exception e) when (e is StoreException or StoreUnavailableException)
            {
                // Sent one at a time until the store answers; SendAsync handles the rest.
            }

            return destination switch
            {
                { Type: DestinationTypes.Email } => (50, TimeSpan.Zero),
                { Segment.Batching: { } b } => (b.MaxSize, TimeSpan.FromMilliseconds(b.MaxWaitMs)),
                { Webhook.Batching: { } b } => (b.MaxSize, TimeSpan.FromMilliseconds(b.MaxWaitMs)),
                _ => (1, TimeSpan.Zero),
            };
        }
    }

    [LoggerMessage(EventId = 6001, Level = LogLevel.Warning, Message = "Activation could not {What}; trying again")]
    private static partial void LogStoreProblem(ILogger logger, string what, Exception exception);

    [LoggerMessage(EventId = 6002, Level = LogLevel.Error, Message = "Sending to destination {Destination} failed unexpectedly")]
    private static partial void LogSendFailed(ILogger logger, string destination, Exception exception);
}
