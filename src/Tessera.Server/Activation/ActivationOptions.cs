namespace Tessera.Server.Activation;

/// <summary>
/// How deliveries are sent and retried (<c>Tessera:Activation</c> in configuration). The defaults retry a failing
/// destination for at least 1.5 hours before a delivery becomes a dead letter: attempt n waits between half and
/// all of <c>min(FirstRetryDelay × 2^(n-1), MaxRetryDelay)</c>, so 15 attempts span 1.6-3.2 hours.
/// </summary>
public sealed class ActivationOptions
{
    /// <summary>Run the delivery workers. Off, deliveries are still derived when it is turned on again (nothing is lost).</summary>
    public bool Enabled { get; set; } = true;

    /// <summary>Attempts (each up to <see cref="QuickRetries"/> + 1 requests) before a delivery is dead-lettered.</summary>
    public int MaxAttempts { get; set; } = 15;

    /// <summary>The wait after the first failed attempt; it doubles with each further one.</summary>
    public TimeSpan FirstRetryDelay { get; set; } = TimeSpan.FromSeconds(5);

    /// <summary>The longest wait between attempts.</summary>
    public TimeSpan MaxRetryDelay { get; set; } = TimeSpan.FromMinutes(30);

    /// <summary>Within one attempt, retries of a request that failed in a transient way (Polly, exponential with jitter).</summary>
    public int QuickRetries { get; set; } = 2;

    /// <summary>The first quick retry's delay; it doubles, with jitter.</summary>
    public TimeSpan QuickRetryDelay { get; set; } = TimeSpan.FromMilliseconds(250);

    /// <summary>How long one request (or SMTP conversation) may take.</summary>
    public TimeSpan RequestTimeout { get; set; } = TimeSpan.FromSeconds(10);

    /// <summary>How long a claim on a delivery lasts; another process takes a delivery over once its claim has expired.</summary>
    public TimeSpan ClaimLease { get; set; } = TimeSpan.FromMinutes(2);

    /// <summary>How often due retries (and other processes' deliveries) are looked for.</summary>
    public TimeSpan PollInterval { get; set; } = TimeSpan.FromSeconds(1);

    /// <summary>Requests in flight at once to one destination.</summary>
    public int MaxConcurrencyPerDestination { get; set; } = 8;

    /// <summary>Deliveries held in memory (claimed, waiting or in flight) before claiming more waits.</summary>
    public int MaxInFlight { get; set; } = 200_000;

    /// <summary>
    /// Send an audience entry or exit to a plain webhook (no batching, purpose or frequency cap) as soon as the engine
    /// makes it, before it is committed, instead of after its commit and derivation (which a DuckDB checkpoint can
    /// delay by seconds). The derived delivery then records that send instead of sending again. Off: every delivery
    /// waits for its derivation.
    /// </summary>
    public bool SendBeforeCommit { get; set; } = true;

    /// <summary>Immediate sends in flight at once (all destinations); past it, changes wait for their derivation.</summary>
    public int MaxImmediateInFlight { get; set; } = 256;
}
