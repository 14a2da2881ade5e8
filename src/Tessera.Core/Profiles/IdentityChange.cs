using Tessera.Core.Identity;

namespace Tessera.Core.Profiles;

public enum IdentityChangeKind
{
    /// <summary>A profile was made (named after the message's log position).</summary>
    Created,

    /// <summary>An identifier was given to a profile.</summary>
    Linked,

    /// <summary><c>OtherProfileId</c> was merged into <c>ProfileId</c>.</summary>
    Merged,

    /// <summary>An identifier was left out of a link because a rule said so.</summary>
    Dropped,

    /// <summary>A value was found but could not be used as an identifier (blocked, unparseable).</summary>
    Rejected,
}

/// <summary>
/// One row of the identity log: what the resolver did for one message, in order. Replaying these rows in order
/// (<see cref="ProfileEngine.Restore"/>) rebuilds the graph; they also answer "why are these one person".
/// </summary>
public sealed record IdentityChange(
    long Seq,
    int Ordinal,
    IdentityChangeKind Kind,
    string? ProfileId,
    string? OtherProfileId,
    Identifier? Identifier,
    DateTimeOffset At,
    string Cause,
    string? Detail,
    IReadOnlyList<Identifier> Identifiers);
