using System.Globalization;
using System.Text.Json.Nodes;
using Tessera.Core.Activation;
using Tessera.Server.Hosting;
using Tessera.Server.Management;
using Tessera.Storage;
using Tessera.Storage.Activation;

namespace Tessera.Server.Activation;

/// <summary>
/// Starts file destinations' runs on their schedules. A run is a delivery in the outbox (kind <c>file_export</c>,
/// cause id the scheduled instant in Unix milliseconds), so the activation service claims it, runs it through
/// <see cref="FileExportChannel"/>, retries it with backoff and dead-letters it like any other delivery.
/// <para>
/// Every <see cref="ActivationOptions.PollInterval"/>: for each enabled file destination, the latest scheduled
/// instant up to now; when it is after the destination's creation and after its last run (scheduled, missed or
/// asked for), and no run is pending, a run for that instant is added. The state is the delivery log itself, so a restart resumes the
/// schedule, and a slot that passed while Tessera was down runs once at start (the latest such slot only: an export
/// is a snapshot, so older missed ones would only repeat it). On PostgreSQL, a run's idempotency key is unique,
/// so processes sharing the database add each scheduled run once.
/// </para>
/// </summary>
public sealed partial class FileExportScheduler(ITesseraStore store, TesseraOptions options, TimeProvider clock, ILogger<FileExportScheduler> logger) : BackgroundService
{
    /// <summary>The last run time known per destination, so a slot already served costs no query.</summary>
    private readonly Dictionary<string, long> _lastRun = new(StringComparer.Ordinal);

    /// <summary>The record a run starts with (its payload until it has run): why and for when.</summary>
    public static NewDelivery Run(string destinationId, DateTimeOffset at, string trigger, DateTimeOffset now)
    {
        var cause = at.ToUnixTimeMilliseconds();
        var payload = new JsonObject { ["type"] = DeliveryKind.FileExport, ["trigger"] = trigger, ["runAt"] = MessageJson.Iso(at) };
        return new NewDelivery(destinationId, "", DeliveryKind.FileExport, cause, DeliveryKeys.For(destinationId, DeliveryKind.FileExport, cause),
            payload.ToJsonString(), DeliveryStatus.Pending, null, now);
    }

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        if (!options.Activation.Enabled) { return; }
        using var timer = new PeriodicTimer(options.Activation.PollInterval);
        var first = true;
        try
        {
            do
            {
                try
                {
                    await ScheduleDueAsync(first, stoppingToken);
                    first = false;
                }
                catch (Exception e) when (e is StoreException or StoreUnavailableException)
                {
                    // The log did not change: the same slots are found due at the next tick.
                    LogScheduleFailed(logger, e);
                }
            }
            while (await timer.WaitForNextTickAsync(stoppingToken));
        }
        catch (OperationCanceledException)
        {
            // Stopping.
        }
    }

    /// <param name="atStart">The first pass: a slot due now passed while Tessera was not running, so its run is <c>missed</c>.</param>
    private async Task ScheduleDueAsync(bool atStart, CancellationToken cancellationToken)
    {
        var now = clock.GetUtcNow();
        foreach (var stored in await store.ListDestinationsAsync(cancellationToken))
        {
            var destination = stored.Destination;
            if (destination is not { Type: DestinationTypes.File, Enabled: true, File: { } file }) { continue; }
            if (file.Schedule.LatestAtOrBefore(now) is not { } slot || slot <= destination.CreatedAt) { continue; }
            var slotMs = slot.ToUnixTimeMilliseconds();
            if (_lastRun.TryGetValue(destination.Id, out var known) && known >= slotMs) { continue; }
            var state = await store.RunStateAsync(destination.Id, cancellationToken);
            if (state.LastRun >= slotMs) { _lastRun[destination.Id] = state.LastRun.Value; continue; }
            // Runs never overlap: while one waits, runs or is retried, the slot passes (the next one is looked at when it comes).
            if (state.Pending) { continue; }
            var trigger = atStart ? "missed" : "schedule";
            if (await store.AddRunAsync(Run(destination.Id, slot, trigger, now), cancellationToken) is not null)
            {
                LogRunScheduled(logger, destination.Id, slot.UtcDateTime.ToString("O", CultureInfo.InvariantCulture), trigger);
            }

            _lastRun[destination.Id] = slotMs;
        }
    }

    [LoggerMessage(EventId = 6101, Level = LogLevel.Information, Message = "File destination {Destination}: run for {At} queued ({Trigger})")]
    private static partial void LogRunScheduled(ILogger logger, string destination, string at, string trigger);

    [LoggerMessage(EventId = 6102, Level = LogLevel.Warning, Message = "Scheduling file destination runs failed; trying again")]
    private static partial void LogScheduleFailed(ILogger logger, Exception exception);
}
