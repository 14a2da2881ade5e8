using System.Text.Json;

namespace Tessera.Core.Audiences;

/// <summary>
/// What <see cref="AudienceEvaluator"/> may ask about one profile. The real-time engine answers from its hot state
/// (only the events some audience reads); tests answer from a full history.
/// </summary>
public interface IAudienceFacts
{
    /// <summary>The trait's current value; false when the profile lacks it or it is null.</summary>
    bool TryTrait(string name, out JsonElement value);

    /// <summary>The values of the profile's identifiers of <paramref name="type"/>.</summary>
    IEnumerable<string> Identifiers(string type);

    /// <summary>The computed trait's value as of <paramref name="now"/>; false when it has none.</summary>
    bool TryComputed(string name, DateTimeOffset now, out JsonElement value);

    /// <summary>The profile's events the selector matches, in log order (<see cref="EventFact.CompareTo"/>).</summary>
    IReadOnlyList<EventFact> Events(EventSelector selector);

    /// <summary>The profile's first track event named <paramref name="eventName"/> ever (whatever its properties), if any.</summary>
    EventFact? FirstEvent(string eventName);

    /// <summary>The definition of another audience, for <see cref="SegmentReference"/>; null when it does not exist.</summary>
    AudienceCondition? Definition(string segmentId);
}
