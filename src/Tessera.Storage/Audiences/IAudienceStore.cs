using Tessera.Core.Audiences;

namespace Tessera.Storage.Audiences;

/// <summary>
/// Audiences: their definitions, and the history of who entered and exited each. Current memberships live in the
/// profile engine (<see cref="Profiles.IProfileStore.Engine"/>) and are kept current by every append and by
/// <see cref="TickAudiencesAsync"/>; every change is stored in the same commit as its cause.
/// </summary>
public interface IAudienceStore
{
    /// <summary>
    /// Stores a new or changed audience, feeds it the stored events it reads, evaluates it for every profile and
    /// records who entered and exited, all before returning; ingestion waits meanwhile so no event slips between.
    /// </summary>
    Task<IReadOnlyList<AudienceChange>> SaveAudienceAsync(Audience audience, CancellationToken cancellationToken);

    /// <summary>Deletes an audience; each member gets an exit. False when there was no such audience.</summary>
    Task<bool> DeleteAudienceAsync(string id, CancellationToken cancellationToken);

    /// <summary>
    /// Re-evaluates the profiles whose time windows moved; returns how many changes were recorded. Returns 0 without
    /// waiting while the engine is busy applying events: the caller (a ticker on the thread pool) asks again.
    /// </summary>
    Task<int> TickAudiencesAsync(CancellationToken cancellationToken);

    /// <summary>Stored entries and exits, oldest first, filtered by audience and/or profiles.</summary>
    Task<IReadOnlyList<StoredAudienceChange>> GetAudienceChangesAsync(AudienceChangeQuery query, CancellationToken cancellationToken);

    /// <summary>Entries and exits of one audience per time bucket (<c>hour</c> or <c>day</c>), oldest first.</summary>
    Task<IReadOnlyList<AudienceSizeBucket>> GetAudienceSizeAsync(string audienceId, string bucket, CancellationToken cancellationToken);

    /// <summary>Raised after a commit that recorded audience changes, with those changes in order (for activation).</summary>
    event Action<IReadOnlyList<AudienceChange>>? AudienceChanged;

    /// <summary>
    /// Raised when changes are resolved in memory, with their ids in the change log, before they are committed (the
    /// embedded store commits behind the engine). A handler may act on them early, accepting that a failed commit
    /// replays them (same ids when they come from events). Not raised by a store that commits in the call.
    /// Handlers run on the writer's path: they must only hand the changes on.
    /// </summary>
    event Action<IReadOnlyList<StoredAudienceChange>>? AudienceStaged;
}

/// <summary>Which changes to read: <see cref="AfterId"/> pages forward.</summary>
public sealed record AudienceChangeQuery(string? AudienceId = null, IReadOnlyCollection<string>? ProfileIds = null, long AfterId = 0, int Limit = 1000);

/// <summary>A change as stored, with its position in the change log.</summary>
public sealed record StoredAudienceChange(long Id, AudienceChange Change);

/// <summary>How many profiles entered and exited in one bucket.</summary>
public sealed record AudienceSizeBucket(DateTimeOffset Start, long Entered, long Exited);
