using System.Text.Json;
using Tessera.Core.Audiences;
using Tessera.Core.Collection;
using Tessera.Core.Profiles;
using Tessera.Storage.Events;

namespace Tessera.Storage.Tests;

/// <summary>
/// <see cref="IAudienceFacts"/> for one live profile, answered the way the in-memory path sees it: traits,
/// identifiers and computed values from the store's engine (<c>engine.Get(profileId, now)</c>), events from the full
/// stored log, each event counted for the live profile its stored profile id resolves to.
/// </summary>
internal sealed class StoredAudienceFacts(ProfileView profile, IReadOnlyList<StoredAudienceFacts.Event> events, IReadOnlyDictionary<string, AudienceCondition> segments) : IAudienceFacts
{
    /// <summary>One stored track event, parsed once.</summary>
    public sealed record Event(long Seq, DateTimeOffset Timestamp, string? Name, JsonElement Message);

    /// <summary>Every stored track event grouped by the live profile it belongs to now, in log order.</summary>
    public static Dictionary<string, List<Event>> ByLiveProfile(IEnumerable<StoredEvent> stored, ProfileEngine engine)
    {
        var byProfile = new Dictionary<string, List<Event>>(StringComparer.Ordinal);
        foreach (var e in stored.Where(e => e.Message.Type == MessageType.Track && e.ProfileId is not null))
        {
            if (engine.SurvivorOf(e.ProfileId!) is not { } live) { continue; }
            if (!byProfile.TryGetValue(live, out var list)) { byProfile[live] = list = []; }
            list.Add(new Event(e.Seq, e.Message.Timestamp, e.Message.Event, e.Message.Raw.Parse().RootElement));
        }

        foreach (var list in byProfile.Values) { list.Sort((a, b) => a.Timestamp != b.Timestamp ? a.Timestamp.CompareTo(b.Timestamp) : a.Seq.CompareTo(b.Seq)); }
        return byProfile;
    }

    public bool TryTrait(string name, out JsonElement value)
    {
        value = default;
        if (!profile.Traits.TryGetValue(name, out var trait) || trait.Value is null) { return false; }
        value = JsonDocument.Parse(trait.Value.ToJsonString()).RootElement;
        return true;
    }

    public IEnumerable<string> Identifiers(string type) => profile.Identifiers.Where(i => i.Type == type).Select(i => i.Value);

    public bool TryComputed(string name, DateTimeOffset now, out JsonElement value)
    {
        value = default;
        if (!profile.Computed.TryGetValue(name, out var computed) || computed is null) { return false; }
        value = JsonDocument.Parse(computed.ToJsonString()).RootElement;
        return true;
    }

    public IReadOnlyList<EventFact> Events(EventSelector selector) =>
        [.. events.Where(e => selector.Matches(e.Name, e.Message)).Select(e => new EventFact(e.Seq, e.Timestamp, selector.NumberOf(e.Message)))];

    public EventFact? FirstEvent(string eventName) =>
        events.FirstOrDefault(e => e.Name == eventName) is { } first ? new EventFact(first.Seq, first.Timestamp, null) : null;

    public AudienceCondition? Definition(string segmentId) => segments.GetValueOrDefault(segmentId);
}
