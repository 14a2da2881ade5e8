namespace Tessera.Core.Identity;

/// <summary>
/// An operator's unmerge, kept as a rule: <see cref="Identifier"/> must never share a profile with any of
/// <see cref="ApartFrom"/> (the identifiers it was split off from). Re-resolving the log with it rebuilds the
/// profiles as if the merge had never happened.
/// </summary>
public sealed record IdentitySeparation(Identifier Identifier, IReadOnlyList<Identifier> ApartFrom, DateTimeOffset At, string Reason);
