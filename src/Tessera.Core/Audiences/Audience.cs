namespace Tessera.Core.Audiences;

/// <summary>A named audience (the contract calls it a segment): a definition whose members Tessera keeps current.</summary>
public sealed record Audience(string Id, string Name, string? Description, AudienceCondition Definition, DateTimeOffset CreatedAt, DateTimeOffset UpdatedAt);

/// <summary>
/// A profile entered or exited an audience: the history row, and what activation listens to. <see cref="Seq"/> is
/// the log position of the message that caused it (null when time passing, a definition change or a rebuild did).
/// </summary>
public sealed record AudienceChange(string AudienceId, string ProfileId, bool Entered, DateTimeOffset At, long? Seq, string Reason)
{
    public string Kind => Entered ? "entered" : "exited";
}
