namespace Tessera.Core.Identity;

/// <summary>A live profile's place in the graph: its id, when it was created, the identifiers it owns.</summary>
public sealed class ProfileIdentity(string id, long createdSeq, DateTimeOffset createdAt)
{
    private readonly List<Identifier> _identifiers = [];

    public string Id { get; } = id;

    /// <summary>Position in the event log of the message that created it; lower is older, and the older profile survives a merge.</summary>
    public long CreatedSeq { get; } = createdSeq;

    public DateTimeOffset CreatedAt { get; } = createdAt;

    public IReadOnlyList<Identifier> Identifiers => _identifiers;

    public int Count(string type)
    {
        var count = 0;
        foreach (var identifier in _identifiers)
        {
            if (identifier.Type == type) { count++; }
        }

        return count;
    }

    internal void Add(Identifier identifier) => _identifiers.Add(identifier);

    internal void AddRange(IEnumerable<Identifier> identifiers) => _identifiers.AddRange(identifiers);

    internal bool Remove(Identifier identifier) => _identifiers.Remove(identifier);
}
