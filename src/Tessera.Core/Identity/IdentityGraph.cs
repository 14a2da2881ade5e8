namespace Tessera.Core.Identity;

/// <summary>
/// Identifier → profile, the live profiles, and which profiles were merged into which. The real-time path's hot
/// state: rebuilt at start from the stored links and merges by replaying them through <see cref="Link"/> and
/// <see cref="Merge"/>, the same calls the resolver makes. Not thread-safe: one writer owns it.
/// </summary>
public sealed class IdentityGraph
{
    private readonly Dictionary<Identifier, string> _owners = new();
    private readonly Dictionary<string, ProfileIdentity> _profiles = new(StringComparer.Ordinal);
    private readonly Dictionary<string, string> _mergedInto = new(StringComparer.Ordinal);
    private readonly Dictionary<string, List<string>> _mergedFrom = new(StringComparer.Ordinal);

    public int ProfileCount => _profiles.Count;

    public int IdentifierCount => _owners.Count;

    public int MergeCount => _mergedInto.Count;

    /// <summary>The live profile that owns <paramref name="identifier"/>, or null.</summary>
    public string? OwnerOf(Identifier identifier) => _owners.GetValueOrDefault(identifier);

    /// <summary>A live profile by id; null for an unknown or merged-away id (see <see cref="SurvivorOf"/>).</summary>
    public ProfileIdentity? Find(string profileId) => _profiles.GetValueOrDefault(profileId);

    /// <summary>The live profile an id ends up in, following merges; null when the id was never a profile.</summary>
    public string? SurvivorOf(string profileId)
    {
        var current = profileId;
        for (var hops = 0; hops < 10_000; hops++)
        {
            if (_profiles.ContainsKey(current)) { return current; }
            if (!_mergedInto.TryGetValue(current, out var next)) { return null; }
            current = next;
        }

        throw new InvalidOperationException($"merge chain from {profileId} does not end");
    }

    /// <summary>Every id merged into <paramref name="profileId"/>, directly or through other merges.</summary>
    public IReadOnlyList<string> MergedFrom(string profileId)
    {
        var result = new List<string>();
        var pending = new Stack<string>([profileId]);
        while (pending.TryPop(out var id))
        {
            if (!_mergedFrom.TryGetValue(id, out var merged)) { continue; }
            foreach (var m in merged)
            {
                result.Add(m);
                pending.Push(m);
            }
        }

        return result;
    }

    /// <summary>The live profiles' ids.</summary>
    public IEnumerable<string> LiveIds => _profiles.Keys;

    /// <summary>Every id that was merged into another profile.</summary>
    public IEnumerable<string> MergedIds => _mergedInto.Keys;

    /// <summary>Every identifier with its owner, for comparing two graphs.</summary>
    public IEnumerable<KeyValuePair<Identifier, string>> Owners => _owners;

    public ProfileIdentity CreateProfile(string id, long seq, DateTimeOffset at)
    {
        var profile = new ProfileIdentity(id, seq, at);
        _profiles.Add(id, profile);
        return profile;
    }

    /// <summary>Gives <paramref name="identifier"/> to the live profile <paramref name="profileId"/>.</summary>
    public void Link(Identifier identifier, string profileId)
    {
        var profile = _profiles[profileId];
        _owners.Add(identifier, profile.Id);
        profile.Add(identifier);
    }

    /// <summary>Moves everything of <paramref name="merged"/> into <paramref name="survivor"/>; the merged id keeps resolving to it.</summary>
    public void Merge(string survivor, string merged)
    {
        var into = _profiles[survivor];
        var from = _profiles[merged];
        foreach (var identifier in from.Identifiers) { _owners[identifier] = into.Id; }
        into.AddRange(from.Identifiers);
        _profiles.Remove(merged);
        _mergedInto[merged] = survivor;
        if (!_mergedFrom.TryGetValue(survivor, out var list)) { _mergedFrom[survivor] = list = []; }
        list.Add(merged);
    }
}
