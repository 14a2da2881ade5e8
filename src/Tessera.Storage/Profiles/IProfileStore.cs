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
}
