using Tessera.Core.Identity;
using Tessera.Core.Profiles;

namespace Tessera.Storage.Profiles;

/// <summary>
/// Profiles: the hot state in memory (<see cref="Engine"/>, kept current by every append) and the history the
/// store keeps beside the events (the identity log, every trait value).
/// </summary>
public interface IProfileStore
{
    ProfileEngine Engine { get; }

    /// <summary>The identity log rows that concern any of <paramref name="profileIds"/>, oldest first.</summary>
    Task<IReadOnlyList<IdentityChange>> GetIdentityChangesAsync(IReadOnlyCollection<string> profileIds, CancellationToken cancellationToken);

    /// <summary>Every value each trait of <paramref name="profileIds"/> took, oldest first.</summary>
    Task<IReadOnlyList<TraitChange>> GetTraitHistoryAsync(IReadOnlyCollection<string> profileIds, CancellationToken cancellationToken);

    /// <summary>Computed traits defined through the API (configuration-defined ones are not stored).</summary>
    Task<IReadOnlyList<ComputedTraitDefinition>> ListComputedTraitsAsync(CancellationToken cancellationToken);

    /// <summary>Stores the definition, adds it to the engine and computes it over every stored event before returning.</summary>
    Task SaveComputedTraitAsync(ComputedTraitDefinition definition, CancellationToken cancellationToken);

    Task<bool> DeleteComputedTraitAsync(string name, CancellationToken cancellationToken);

    /// <summary>
    /// Replays the whole event log through <paramref name="fresh"/> (an empty engine with the rules and separations
    /// to use) and reports what would change. With <paramref name="apply"/>, replaces the profiles, the identity
    /// log, the trait history and every event's profile id with the replay's, in one commit, together with
    /// <paramref name="addSeparation"/>; ingestion waits only for the last part of the log.
    /// </summary>
    Task<GraphComparison> ReresolveAsync(ProfileEngine fresh, bool apply, IdentitySeparation? addSeparation, CancellationToken cancellationToken);
}
