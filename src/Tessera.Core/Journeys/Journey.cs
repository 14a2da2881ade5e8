namespace Tessera.Core.Journeys;

/// <summary>
/// A journey as saved: its <see cref="Definition"/> at <see cref="Version"/> (every save of a changed definition
/// makes a new version; a profile's run keeps the version it entered with), and whether it runs.
/// </summary>
public sealed record Journey(
    string Id, string Name, string? Description, string Status, int Version, JourneyDefinition Definition, DateTimeOffset CreatedAt, DateTimeOffset UpdatedAt);

/// <summary>Whether a journey runs.</summary>
public static class JourneyStatus
{
    /// <summary>Saved, never run: nobody enters.</summary>
    public const string Draft = "draft";

    /// <summary>Profiles enter and move through it.</summary>
    public const string Active = "active";

    /// <summary>
    /// Nobody enters, and nobody moves: profiles stay at their step. What happens meanwhile is still recorded
    /// (an awaited event, an exit trigger), and acted on when the journey is enabled again.
    /// </summary>
    public const string Paused = "paused";

    public static readonly IReadOnlyList<string> All = [Draft, Active, Paused];
}
