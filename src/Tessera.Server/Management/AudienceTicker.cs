using Tessera.Storage;

namespace Tessera.Server.Management;

/// <summary>
/// Lets time move audiences: people leave "in the last 30 days" audiences when their last qualifying event ages
/// out, with no new event. Asks the store a few times a second; the engine knows the next instant anything is due,
/// so an idle tick costs a comparison.
/// </summary>
public sealed partial class AudienceTicker(ITesseraStore store, ILogger<AudienceTicker> logger) : BackgroundService
{
    private static readonly TimeSpan Interval = TimeSpan.FromMilliseconds(200);

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        using var timer = new PeriodicTimer(Interval);
        try
        {
            while (await timer.WaitForNextTickAsync(stoppingToken))
            {
                try
                {
                    await store.TickAudiencesAsync(stoppingToken);
                }
                catch (Exception e) when (e is not OperationCanceledException)
                {
                    // The store is away or refused the write; the engine still knows what is due, so the next tick retries.
                    LogTickFailed(logger, e);
                }
            }
        }
        catch (OperationCanceledException)
        {
            // Stopping.
        }
    }

    [LoggerMessage(EventId = 4001, Level = LogLevel.Warning, Message = "Recording audience changes that time caused failed; retrying")]
    private static partial void LogTickFailed(ILogger logger, Exception exception);
}
