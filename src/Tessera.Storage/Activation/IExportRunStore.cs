namespace Tessera.Storage.Activation;

/// <summary>
/// Runs of file destinations as rows of the delivery log (kind <see cref="DeliveryKind.FileExport"/>, cause id the
/// run's time in Unix milliseconds): a scheduled or requested run is a pending delivery, so the outbox claims,
/// retries, dead-letters and logs it like any other.
/// </summary>
public interface IExportRunStore
{
    /// <summary>The latest run time (cause id) recorded for the destination, whatever became of it, and whether a run is still pending.</summary>
    Task<ExportRunState> RunStateAsync(string destinationId, CancellationToken cancellationToken);

    /// <summary>
    /// Adds a run, pending and due at its creation time, unless one with its idempotency key exists (another process,
    /// or an earlier call, scheduled the same run). Returns the new row, or null when it existed.
    /// </summary>
    Task<Delivery?> AddRunAsync(NewDelivery run, CancellationToken cancellationToken);

    /// <summary>The highest id in the audience change log (0 when empty): what an export's changes file reaches.</summary>
    Task<long> LastAudienceChangeIdAsync(CancellationToken cancellationToken);
}

/// <summary>A file destination's runs as the log has them: the latest run's time (Unix ms; null before the first), and whether one is pending (waiting, running or retrying).</summary>
public sealed record ExportRunState(long? LastRun, bool Pending);
