using System.Text.Json;
using System.Text.Json.Nodes;

namespace Tessera.Core.Profiles;

/// <summary>
/// The current traits of every live profile, chosen by <see cref="ProfileRules"/>. Not thread-safe: the writer owns it.
/// </summary>
public sealed class ProfileTraits(ProfileRules rules, Func<string, string?>? sourceName = null)
{
    private readonly Dictionary<string, Dictionary<string, TraitValue>> _byProfile = new(StringComparer.Ordinal);

    public ProfileRules Rules { get; } = rules;

    public IReadOnlyDictionary<string, TraitValue>? Of(string profileId) => _byProfile.GetValueOrDefault(profileId);

    /// <summary>Offers each trait of <paramref name="traits"/> to the profile; returns the ones that changed its value.</summary>
    public List<TraitChange> Apply(string profileId, JsonElement traits, DateTimeOffset at, long seq, string sourceId)
    {
        var changes = new List<TraitChange>();
        if (traits.ValueKind != JsonValueKind.Object) { return changes; }
        foreach (var property in traits.EnumerateObject())
        {
            var offered = new TraitValue(TraitJson.From(property.Value), at, seq, sourceId);
            if (Offer(profileId, property.Name, offered)) { changes.Add(new TraitChange(profileId, property.Name, offered)); }
        }

        return changes;
    }

    /// <summary>Sets a trait if its policy prefers <paramref name="offered"/> over the current value. Also used to replay stored history.</summary>
    public bool Offer(string profileId, string name, TraitValue offered)
    {
        if (!_byProfile.TryGetValue(profileId, out var traits)) { _byProfile[profileId] = traits = new Dictionary<string, TraitValue>(StringComparer.Ordinal); }
        if (traits.TryGetValue(name, out var current) && !Prefers(Rules.PolicyFor(name), offered, current)) { return false; }
        if (current is not null && JsonNode.DeepEquals(current.Value, offered.Value) && current.SourceId == offered.SourceId) { return false; }
        traits[name] = offered;
        return true;
    }

    /// <summary>Folds the merged profile's traits into the survivor's under each trait's policy.</summary>
    public void Merge(string survivor, string merged)
    {
        if (!_byProfile.Remove(merged, out var from)) { return; }
        foreach (var (name, value) in from) { Offer(survivor, name, value); }
    }

    private bool Prefers(TraitPolicy policy, TraitValue offered, TraitValue current) => policy switch
    {
        TraitPolicy.First => offered.At < current.At || (offered.At == current.At && offered.Seq < current.Seq),
        TraitPolicy.Highest => Compare(offered.Value, current.Value) > 0,
        TraitPolicy.Lowest => Compare(offered.Value, current.Value) < 0,
        TraitPolicy.SourcePriority => Rank(offered.SourceId) < Rank(current.SourceId) || (Rank(offered.SourceId) == Rank(current.SourceId) && IsLater(offered, current)),
        _ => IsLater(offered, current),
    };

    private static bool IsLater(TraitValue offered, TraitValue current) => offered.At > current.At || (offered.At == current.At && offered.Seq >= current.Seq);

    private int Rank(string sourceId)
    {
        var name = sourceName?.Invoke(sourceId);
        for (var i = 0; i < Rules.SourcePriority.Count; i++)
        {
            if (Rules.SourcePriority[i] == sourceId || Rules.SourcePriority[i] == name) { return i; }
        }

        return int.MaxValue;
    }

    private static int Compare(JsonNode? a, JsonNode? b)
    {
        if (a is null || b is null) { return a is null ? (b is null ? 0 : -1) : 1; }
        if (a is JsonValue va && b is JsonValue vb && va.TryGetValue<decimal>(out var x) && vb.TryGetValue<decimal>(out var y)) { return x.CompareTo(y); }
        return string.CompareOrdinal(a.ToJsonString(), b.ToJsonString());
    }
}
