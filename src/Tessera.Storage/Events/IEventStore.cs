using Tessera.Core.Collection;

namespace Tessera.Storage.Events;

/// <summary>The event log: every accepted message, in full, in arrival order.</summary>
public interface IEventStore
{
    /// <summary>
    /// Appends <paramref name="events"/> and returns only once they are durable (they survive <c>kill -9</c>).
    /// A message whose (source, messageId) was already stored within the dedup window, or appears twice in the
    /// list, is stored once. Throws <see cref="StoreUnavailableException"/> when the store cannot take writes now.
    /// </summary>
    Task<AppendResult> AppendAsync(IReadOnlyList<CollectedEvent> events, CancellationToken cancellationToken);

    /// <summary>Newest first, filtered, one page at a time.</summary>
    Task<EventPage> QueryAsync(EventQuery query, CancellationToken cancellationToken);

    /// <summary>Counts for <c>/api/stats</c>.</summary>
    Task<StoreStats> GetStatsAsync(CancellationToken cancellationToken);

    /// <summary>Raised after a commit that stored events (for activation, which reads them from the log then).</summary>
    event Action? Appended;
}
