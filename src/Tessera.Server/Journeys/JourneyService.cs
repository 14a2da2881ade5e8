using System.Threading.Channels;
using Tessera.Server.Hosting;
using Tessera.Storage;

namespace Tessera.Server.Journeys;

/// <summary>
/// Moves journey runs, in two loops:
/// <list type="number">
/// <item>derive: after each commit that recorded audience changes or events (and every
/// <see cref="JourneyOptions.DeriveInterval"/>), the store reads the logs past <c>journey_cursor</c> and the
/// <see cref="JourneyRunner"/> turns them into entries, awaited events and exits, written with the cursor's move;</item>
/// <item>due: every <see cref="JourneyOptions.PollInterval"/>, runs whose wait ended (by the server's clock, which a
/// test may replace) are moved on, locked so no two processes move one run.</item>
/// </list>
/// Sends go to the outbox, where the activation service's claim loop picks them up (within its poll interval).
/// </summary>
public sealed partial class JourneyService(ITesseraStore store, TesseraOptions options, TimeProvider clock, ILogger<JourneyService> logger) : BackgroundService
{
    private readonly JourneyRunner _runner = new(() => store.Engine);
    private readonly Channel<bool> _signal = Channel.CreateBounded<bool>(new BoundedChannelOptions(1) { FullMode = BoundedChannelFullMode.DropWrite });

    /// <summary>Asks for a derivation now (after a commit, or after a journey was enabled).</summary>
    public void Wake() => _signal.Writer.TryWrite(true);

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        if (!options.Journeys.Enabled) { return; }
        store.Appended += Wake;
        store.AudienceChanged += OnAudienceChanged;
        try
        {
            await Task.WhenAll(Task.Run(() => DeriveLoopAsync(stoppingToken), CancellationToken.None), Task.Run(() => DueLoopAsync(stoppingToken), CancellationToken.None));
        }
        finally
        {
            store.Appended -= Wake;
            store.AudienceChanged -= OnAudienceChanged;
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
                    wait.CancelAfter(options.Journeys.DeriveInterval);
                    try
                    {
                        await _signal.Reader.ReadAsync(wait.Token);
                    }
                    catch (OperationCanceledException) when (!stoppingToken.IsCancellationRequested)
                    {
                        // The interval passed: derive anyway (another process's commits raise no signal here).
                    }
                }

                while (!stoppingToken.IsCancellationRequested)
                {
                    var result = await store.DeriveJourneysAsync(_runner, clock.GetUtcNow(), stoppingToken);
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
                LogProblem(logger, "read the logs for journeys", e);
                await DelayQuietlyAsync(TimeSpan.FromSeconds(1), stoppingToken);
            }
        }
    }

    private async Task DueLoopAsync(CancellationToken stoppingToken)
    {
        while (!stoppingToken.IsCancellationRequested)
        {
            await DelayQuietlyAsync(options.Journeys.PollInterval, stoppingToken);
            try
            {
                while (!stoppingToken.IsCancellationRequested)
                {
                    var result = await store.AdvanceDueJourneysAsync(_runner, clock.GetUtcNow(), options.Journeys.DueBatch, stoppingToken);
                    if (!result.More) { break; }
                }
            }
            catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
            {
                return;
            }
            catch (Exception e)
            {
                LogProblem(logger, "move due journey runs", e);
                await DelayQuietlyAsync(TimeSpan.FromSeconds(1), stoppingToken);
            }
        }
    }

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

    [LoggerMessage(EventId = 6101, Level = LogLevel.Warning, Message = "Journeys could not {What}; trying again")]
    private static partial void LogProblem(ILogger logger, string what, Exception exception);
}
