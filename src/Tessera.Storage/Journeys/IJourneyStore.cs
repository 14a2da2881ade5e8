using Tessera.Core.Journeys;
using Tessera.Storage.Activation;
using Tessera.Storage.Audiences;
using Tessera.Storage.Events;

namespace Tessera.Storage.Journeys;

/// <summary>
/// Journeys: their definitions (every version a run may still be on), each run's position, its history, and the
/// cursor behind which runs are moved by the logs. Two kinds of step move runs, each in one transaction with
/// everything it causes (positions, history lines, outbox deliveries):
/// <list type="bullet">
/// <item><see cref="DeriveJourneysAsync"/> reads the audience change log and the event log after <c>journey_cursor</c>
/// (entries, awaited events, exit triggers) and moves the cursor, so a crash loses no cause and doubles none;</item>
/// <item><see cref="AdvanceDueJourneysAsync"/> takes runs whose due time has come (a wait's end, a time-out), locked
/// so that no two processes move one run.</item>
/// </list>
/// </summary>
public interface IJourneyStore
{
    /// <summary>Every journey that was not deleted, oldest first.</summary>
    Task<IReadOnlyList<StoredJourney>> ListJourneysAsync(CancellationToken cancellationToken);

    Task<StoredJourney?> GetJourneyAsync(string id, CancellationToken cancellationToken);

    /// <summary>
    /// Inserts or replaces a journey; its definition is kept under its version (a new version is a new row, an old
    /// one is never changed). <paramref name="startEntries"/>: it is being enabled, so entries count from the
    /// current end of both logs (nothing that happened before, or while it was paused, enters it).
    /// </summary>
    Task SaveJourneyAsync(Journey journey, bool startEntries, CancellationToken cancellationToken);

    /// <summary>Marks a journey deleted; its active runs exit (<paramref name="reason"/>). Positions and history stay. False when there was none.</summary>
    Task<bool> DeleteJourneyAsync(string id, string reason, DateTimeOffset now, CancellationToken cancellationToken);

    /// <summary>
    /// One derivation step (see the type's summary). Its deliveries go to the outbox pending and unclaimed, due at
    /// <paramref name="now"/>: the activation service's claim loop sends them like any retry.
    /// </summary>
    Task<JourneyStepResult> DeriveJourneysAsync(IJourneyRunner runner, DateTimeOffset now, CancellationToken cancellationToken);

    /// <summary>Moves up to <paramref name="limit"/> runs of enabled journeys whose due time is at or before <paramref name="now"/>.</summary>
    Task<JourneyStepResult> AdvanceDueJourneysAsync(IJourneyRunner runner, DateTimeOffset now, int limit, CancellationToken cancellationToken);

    /// <summary>The earliest due time of a run of an enabled journey; null when none waits.</summary>
    Task<DateTimeOffset?> NextJourneyDueAsync(CancellationToken cancellationToken);

    /// <summary>Runs, newest first (by id, below <see cref="PositionQuery.Before"/>).</summary>
    Task<IReadOnlyList<JourneyPosition>> QueryPositionsAsync(PositionQuery query, CancellationToken cancellationToken);

    /// <summary>How many runs of the journey are at each (state, step).</summary>
    Task<IReadOnlyList<PositionCount>> CountPositionsAsync(string journeyId, CancellationToken cancellationToken);

    /// <summary>The history lines of the listed runs, in the order they happened.</summary>
    Task<IReadOnlyList<JourneyHistoryEntry>> JourneyHistoryAsync(IReadOnlyCollection<long> positionIds, CancellationToken cancellationToken);
}

/// <summary>A journey with where in the logs its entries start (causes at or before them never enter it).</summary>
public sealed record StoredJourney(Journey Journey, long AfterChangeId, long AfterSeq);

/// <summary>A stored definition text of one version.</summary>
public sealed record JourneyVersionText(string JourneyId, int Version, string Definition);

/// <summary>A profile's latest run of a journey: re-entry rules read it.</summary>
public sealed record LastRun(int Run, DateTimeOffset EnteredAt, bool Active);

/// <summary>Which runs to list.</summary>
public sealed record PositionQuery(string? JourneyId = null, IReadOnlyCollection<string>? ProfileIds = null, string? StepId = null, string? State = null, long? Before = null, int Limit = 100);

public sealed record PositionCount(string State, string StepId, long Count);

/// <summary>
/// What a step did: how many runs it wrote, how many deliveries it put in the outbox, and whether more is waiting;
/// <see cref="Busy"/> when another process holds the journey cursor.
/// </summary>
public sealed record JourneyStepResult(int Moved, int Deliveries, bool More, bool Busy = false);

/// <summary>The journey events a derivation must read, and the audiences whose changes matter.</summary>
public sealed record JourneyInterest(IReadOnlyCollection<string> EventNames, IReadOnlyCollection<string> Segments);

/// <summary>What the store read for one step, for <see cref="IJourneyRunner"/>.</summary>
/// <param name="SeqBefore">The event log position this step's events come after (a cause without its own position sorts there).</param>
/// <param name="SeqNow">The end of the event log as this step reads it: a wait that starts now counts only events after it.</param>
/// <param name="Positions">Derivation: the active runs of the causes' profiles (and profiles merged with them). Advancing: the due runs.</param>
/// <param name="LastRuns">Each (journey, profile)'s latest run, for the re-entry rules (derivation only).</param>
/// <param name="Consent">The latest preferences of the profiles involved (and those merged with them).</param>
/// <param name="Recent">Per destination with a frequency cap: deliveries per profile in its period.</param>
/// <param name="NextPositionId">Allocates the id of a new run.</param>
public sealed record JourneyInput(
    DateTimeOffset Now,
    IReadOnlyList<StoredJourney> Journeys,
    IReadOnlyList<JourneyVersionText> Versions,
    IReadOnlyList<StoredDestination> Destinations,
    IReadOnlyList<StoredAudienceChange> Changes,
    IReadOnlyList<StoredEvent> Events,
    long SeqBefore,
    long SeqNow,
    IReadOnlyList<JourneyPosition> Positions,
    IReadOnlyDictionary<(string JourneyId, string ProfileId), LastRun> LastRuns,
    IReadOnlyList<ConsentState> Consent,
    IReadOnlyDictionary<string, Dictionary<string, int>> Recent,
    Func<long> NextPositionId);

/// <summary>What a step changed: runs to write (new or moved), history lines, and deliveries for the outbox.</summary>
public sealed record JourneyOutcome(IReadOnlyList<JourneyPosition> Positions, IReadOnlyList<JourneyHistoryEntry> History, IReadOnlyList<NewDelivery> Deliveries);

/// <summary>Moves runs; the server implements it (journey rules, branch conditions on the live profile, payloads).</summary>
public interface IJourneyRunner
{
    JourneyInterest Interest(IReadOnlyList<StoredJourney> journeys, IReadOnlyList<JourneyVersionText> versions);

    /// <summary>The profiles, each with the live profile it belongs to now and every profile merged into that one.</summary>
    IReadOnlyCollection<string> Cluster(IEnumerable<string> profileIds);

    JourneyOutcome Derive(JourneyInput input);

    JourneyOutcome Advance(JourneyInput input);
}
