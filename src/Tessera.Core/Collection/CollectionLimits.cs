namespace Tessera.Core.Collection;

/// <summary>Segment's published limits for its HTTP Tracking API, which Tessera applies the same way.</summary>
public static class CollectionLimits
{
    /// <summary>32 KB per message.</summary>
    public const int MaxEventBytes = 32 * 1024;

    /// <summary>500 KB per request body (after gzip is undone).</summary>
    public const int MaxBatchBytes = 500 * 1024;

    /// <summary>2,500 messages per batch.</summary>
    public const int MaxBatchEvents = 2500;

    /// <summary>Longest messageId kept; longer ones are rejected rather than truncated, so dedup stays exact.</summary>
    public const int MaxMessageIdLength = 256;
}
