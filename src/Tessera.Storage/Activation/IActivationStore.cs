using Tessera.Core.Activation;
using Tessera.Storage.Audiences;
using Tessera.Storage.Events;

namespace Tessera.Storage.Activation;

/// <summary>
/// Activation: destinations, the outbox of deliveries and their log, and the consent each profile last stated.
/// Deliveries are derived from the audience change log and the event log behind one cursor
/// (<see cref="DeriveDeliveriesAsync"/>): the deliveries and the cursor move in one transaction, so a crash between
/// a cause's commit and its deliveries loses nothing (the next derivation starts at the cursor) and doubles nothing.
/// </summary>
public interface IActivationStore
{
    Task<IReadOnlyList<StoredDestination>> ListDestinationsAsync(CancellationToken cancellationToken);

    Task<StoredDestination?> GetDestinationAsync(string id, CancellationToken cancellationToken);

    /// <summary>Inserts or replaces a destination. A new one starts at the current end of both logs.</summary>
    Task SaveDestinationAsync(Destination destination, CancellationToken cancellationToken);

    /// <summary>False when there was no such destination. Its deliveries stay in the log; pending ones are cancelled.</summary>
    Task<bool> DeleteDestinationAsync(string id, CancellationToken cancellationToken);

    /// <summary>
    /// In one transaction (and, on a shared store, with the cursor row locked so processes take turns): reads the
    /// audience changes and events after the cursor (a bounded step), records the consent they state, lets
    /// <paramref name="deriver"/> turn them into deliveries, writes those (pending ones claimed by
    /// <paramref name="claim"/>) and moves the cursor. <paramref name="beforeCommit"/> gets the pending deliveries
    /// written, with their ids, just before the commit, so they can be sent while it runs (their causes are
    /// committed already; should this commit fail, the step is derived again and they are sent again, under the
    /// same keys). Returns them too.
    /// </summary>
    Task<DerivationResult> DeriveDeliveriesAsync(IDeliveryDeriver deriver, DeliveryClaim claim, Action<IReadOnlyList<Delivery>>? beforeCommit, CancellationToken cancellationToken);

    /// <summary>Claims pending deliveries that are due and not claimed by a live owner, oldest due first.</summary>
    Task<IReadOnlyList<Delivery>> ClaimDueDeliveriesAsync(DeliveryClaim claim, int limit, CancellationToken cancellationToken);

    /// <summary>Releases every claim of <paramref name="owner"/> (at start, for claims a previous run left).</summary>
    Task ReleaseClaimsAsync(string? owner, CancellationToken cancellationToken);

    /// <summary>Records attempts' results; only rows still claimed by <paramref name="owner"/> are changed.</summary>
    Task RecordOutcomesAsync(string owner, IReadOnlyList<DeliveryOutcome> outcomes, CancellationToken cancellationToken);

    /// <summary>The next time a pending delivery is due; null when none is pending.</summary>
    Task<DateTimeOffset?> NextDueAsync(CancellationToken cancellationToken);

    Task<IReadOnlyList<Delivery>> QueryDeliveriesAsync(DeliveryQuery query, CancellationToken cancellationToken);

    /// <summary>Puts dead letters of a destination (all, or those listed) back to pending, due now, with a fresh attempt count.</summary>
    Task<IReadOnlyList<long>> ReplayDeadLettersAsync(string destinationId, IReadOnlyCollection<long>? ids, DateTimeOffset now, CancellationToken cancellationToken);

    /// <summary>The latest stated preference per category of each profile listed (absent: never stated).</summary>
    Task<IReadOnlyList<ConsentState>> GetConsentAsync(IReadOnlyCollection<string> profileIds, CancellationToken cancellationToken);
}

/// <summary>The latest preference a profile stated for one category, and the message that stated it.</summary>
public sealed record ConsentState(string ProfileId, string Category, bool Granted, long Seq, DateTimeOffset At);

/// <summary>What the store read after the cursor, for <see cref="IDeliveryDeriver.Derive"/>.</summary>
/// <param name="Consent">Latest preferences of the profiles <see cref="IDeliveryDeriver.ConsentProfiles"/> asked for, this step's included.</param>
/// <param name="Recent">For each destination with a frequency cap: per profile of this step's causes, the deliveries that count against it.</param>
public sealed record DerivationInput(
    IReadOnlyList<StoredDestination> Destinations, IReadOnlyList<StoredAudienceChange> Changes, IReadOnlyList<StoredEvent> Events, IReadOnlyList<ConsentState> Consent,
    IReadOnlyDictionary<string, Dictionary<string, int>> Recent);

/// <summary>
/// What a derivation step wrote: the pending deliveries (claimed), how many in all, and whether more is waiting;
/// <see cref="Busy"/> when another process holds the cursor (it derives meanwhile; try again shortly).
/// </summary>
public sealed record DerivationResult(IReadOnlyList<Delivery> Pending, int Written, bool More, bool Busy = false);

/// <summary>Which events a derivation must read: the names subscribed, or every track event when a filter-only subscription exists.</summary>
public sealed record EventInterest(IReadOnlyCollection<string> Names, bool AnyTrack);

/// <summary>Turns log entries into deliveries; the activation service implements it (matching, consent, payloads).</summary>
public interface IDeliveryDeriver
{
    EventInterest Interest(IReadOnlyList<StoredDestination> destinations);

    /// <summary>The profiles whose consent <see cref="Derive"/> needs (those of the causes, with the profiles merged into them).</summary>
    IReadOnlyCollection<string> ConsentProfiles(IReadOnlyList<StoredDestination> destinations, IReadOnlyList<StoredAudienceChange> changes, IReadOnlyList<StoredEvent> events);

    IReadOnlyList<NewDelivery> Derive(DerivationInput input);
}
