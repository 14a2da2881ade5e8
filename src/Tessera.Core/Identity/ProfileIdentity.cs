namespace Tessera.Core.Identity;

/// <summary>A live profile's place in the graph: its id, when it was created, the identifiers it owns.</summary>
public sealed class ProfileIdentity(string id, long createdSeq, DateTimeOffset createdAt)
{
    private readonly List<Identifier> _identifiers = [];

    // Most profiles hold a handful of identifiers and a scan is cheapest; a profile that grows large (a shared
    // device, a bot) gets counts kept per type so limit checks stay O(1) without costing every profile memory.
    private const int CountCacheFrom = 16;
    private Dictionary<string, int>? _countByType;

    public string Id { get; } = id;

    /// <summary>Position in the event log of the message that created it; lower is older, and the older profile survives a merge.</summary>
    public long CreatedSeq { get; } = createdSeq;

    public DateTimeOffset CreatedAt { get; } = createdAt;

    public IReadOnlyList<Identifier> Identifiers => _identifiers;

    /// <summary>How many identifiers of <paramref name="type"/> the profile has; kept as a count so limit checks stay O(1).</summary>
    public int Count(string type)
    {
        if (_countByType is not null) { return _countByType.GetValueOrDefault(type); }
        var count = 0;
        foreach (var identifier in _identifiers)
        {
            if (identifier.Type == type) { count++; }
        }

        return count;
    }

    internal void Add(Identifier identifier)
    {
        _identifiers.Add(identifier);
        if (_countByType is not null)
        {
            _countByType[identifier.Type] = _countByType.GetValueOrDefault(identifier.Type) + 1;
        }
        else if (_identifiers.Count >= CountCacheFrom)
        {
            _countByType = _identifiers.GroupBy(i => i.Type, StringComparer.Ordinal).ToDictionary(g => g.Key, g => g.Count(), StringComparer.Ordinal);
        }
    }

    internal void AddRange(IEnumerable<Identifier> identifiers)
    {
        foreach (var identifier in identifiers) { Add(identifier); }
    }
}
