namespace Tessera.Core.Identity;

/// <summary>What re-resolving would change: profiles that would merge together and profiles that would split apart.</summary>
/// <param name="Merging">Current profiles that would end up sharing a new profile with another current profile.</param>
/// <param name="Splitting">Current profiles whose identifiers would end up in more than one new profile.</param>
/// <param name="Examples">A few concrete cases, in words.</param>
public sealed record GraphComparison(int ProfilesBefore, int ProfilesAfter, int Merging, int Splitting, int IdentifiersMoved, IReadOnlyList<string> Examples)
{
    public static GraphComparison Compare(IdentityGraph before, IdentityGraph after)
    {
        var newOf = new Dictionary<string, HashSet<string>>(StringComparer.Ordinal); // old profile → new profiles
        var oldOf = new Dictionary<string, HashSet<string>>(StringComparer.Ordinal); // new profile → old profiles
        var moved = 0;
        foreach (var (identifier, oldProfile) in before.Owners)
        {
            var newProfile = after.OwnerOf(identifier) ?? "(none)";
            if (newProfile != oldProfile) { moved++; }
            Add(newOf, oldProfile, newProfile);
            Add(oldOf, newProfile, oldProfile);
        }

        var examples = new List<string>();
        var splitting = newOf.Where(p => p.Value.Count > 1).ToList();
        var merging = oldOf.Where(p => p.Value.Count > 1).ToList();
        examples.AddRange(splitting.Take(3).Select(p => $"{p.Key} would split into {string.Join(", ", p.Value.Order(StringComparer.Ordinal))}"));
        examples.AddRange(merging.Take(3).Select(p => $"{string.Join(", ", p.Value.Order(StringComparer.Ordinal))} would merge into {p.Key}"));
        return new GraphComparison(before.ProfileCount, after.ProfileCount, merging.Sum(p => p.Value.Count), splitting.Count, moved, examples);
    }

    private static void Add(Dictionary<string, HashSet<string>> map, string key, string value)
    {
        if (!map.TryGetValue(key, out var set)) { map[key] = set = new HashSet<string>(StringComparer.Ordinal); }
        set.Add(value);
    }
}
