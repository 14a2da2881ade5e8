namespace Tessera.Core.Identity;

/// <summary>What the resolver is told about one message (or import row).</summary>
/// <param name="Seq">The message's position in the event log; a profile it creates is named after it.</param>
/// <param name="MessageId">The message that caused it; the record says <c>message m-123</c>.</param>
public sealed record ResolutionInput(long Seq, DateTimeOffset At, string MessageId, IReadOnlyList<Identifier> Identifiers)
{
    /// <summary>Built only when a change is recorded: most messages change nothing and need no text.</summary>
    public string Cause => CauseOf(MessageId);

    public static string CauseOf(string messageId) => $"message {messageId}";
}

/// <summary>A merge and why it happened.</summary>
/// <param name="Identifiers">The identifiers of the message that tied the profiles together.</param>
public sealed record ProfileMerge(string Survivor, string Merged, long Seq, DateTimeOffset At, string Cause, IReadOnlyList<Identifier> Identifiers, string Rule);

/// <summary>An identifier given to a profile.</summary>
public sealed record IdentityLink(Identifier Identifier, string ProfileId, long Seq, DateTimeOffset At);

/// <summary>An identifier the resolver left out of a link, and the rule that said so.</summary>
public sealed record IdentityDecision(Identifier Identifier, long Seq, DateTimeOffset At, string Cause, string Reason);

/// <summary>The outcome for one message: its profile (null when it had no usable identifier) and every change made.</summary>
public sealed record Resolution(string? ProfileId, bool Created, IReadOnlyList<IdentityLink> Links, IReadOnlyList<ProfileMerge> Merges, IReadOnlyList<IdentityDecision> Decisions)
{
    public static readonly Resolution None = new(null, false, [], [], []);
}

/// <summary>
/// Segment-style identity resolution over an <see cref="IdentityGraph"/>. The message's identifiers are taken in
/// priority order; each joins the link unless the profiles involved would then break a type's limit, in which case
/// it is left out and the decision recorded. The profiles the link touches merge into the oldest; identifiers no
/// one owned go to it; with no profile involved, a new one is made, named after the message's log position, so
/// that replaying the same log with the same rules gives the same ids.
/// </summary>
public sealed class IdentityResolver(IdentityRules rules, IReadOnlyList<IdentitySeparation>? separations = null)
{
    private readonly Dictionary<Identifier, HashSet<Identifier>> _apart = BuildApart(separations ?? []);

    public IdentityRules Rules { get; } = rules;

    public IReadOnlyList<IdentitySeparation> Separations { get; } = separations ?? [];

    public static string ProfileIdFor(long seq) => $"prof_{seq}";

    public Resolution Resolve(IdentityGraph graph, ResolutionInput input)
    {
        if (input.Identifiers.Count == 0) { return Resolution.None; }
        if (KnownToOneProfile(graph, input.Identifiers) is { } known) { return new Resolution(known, false, [], [], []); }

        var ordered = input.Identifiers.Distinct().OrderByDescending(i => Rules.Find(i.Type)?.Priority ?? 0).ToList();
        var involved = new List<ProfileIdentity>();
        var fresh = new List<Identifier>();
        var kept = new List<Identifier>();
        List<IdentityDecision>? decisions = null;
        foreach (var identifier in ordered)
        {
            var owner = graph.OwnerOf(identifier) is { } ownerId ? graph.Find(ownerId) : null;
            var joinsProfile = owner is not null && !involved.Contains(owner);
            var broken = BrokenLimit(involved, fresh, joinsProfile ? owner : null, owner is null ? identifier : null)
                ?? BrokenSeparation(graph, involved, fresh, joinsProfile ? owner : null, identifier);
            if (broken is not null)
            {
                (decisions ??= []).Add(new IdentityDecision(identifier, input.Seq, input.At, input.Cause, broken));
                continue;
            }

            kept.Add(identifier);
            if (joinsProfile) { involved.Add(owner!); }
            if (owner is null) { fresh.Add(identifier); }
        }

        if (kept.Count == 0) { return new Resolution(null, false, [], [], decisions ?? []); }

        var created = involved.Count == 0;
        var survivor = created
            ? graph.CreateProfile(ProfileIdFor(input.Seq), input.Seq, input.At)
            : involved.MinBy(p => p.CreatedSeq)!;
        var merges = new List<ProfileMerge>();
        foreach (var other in involved.Where(p => p != survivor).OrderBy(p => p.CreatedSeq))
        {
            var shared = kept.Where(i => other.Identifiers.Contains(i)).ToList();
            graph.Merge(survivor.Id, other.Id);
            merges.Add(new ProfileMerge(survivor.Id, other.Id, input.Seq, input.At, input.Cause, kept,
                $"{string.Join(", ", shared)} seen with {string.Join(", ", kept.Except(shared))} in one message; no identifier limit broken"));
        }

        var links = new List<IdentityLink>(fresh.Count);
        foreach (var identifier in fresh)
        {
            graph.Link(identifier, survivor.Id);
            links.Add(new IdentityLink(identifier, survivor.Id, input.Seq, input.At));
        }

        return new Resolution(survivor.Id, created, links, merges, decisions ?? []);
    }

    /// <summary>
    /// The common case, answered without allocating: every identifier already belongs to the same profile, so no
    /// link, merge or limit can change. Null when any identifier is new or owned elsewhere.
    /// </summary>
    private static string? KnownToOneProfile(IdentityGraph graph, IReadOnlyList<Identifier> identifiers)
    {
        string? owner = null;
        for (var i = 0; i < identifiers.Count; i++)
        {
            var o = graph.OwnerOf(identifiers[i]);
            if (o is null || (owner is not null && !ReferenceEquals(o, owner) && o != owner)) { return null; }
            owner = o;
        }

        return owner;
    }

    /// <summary>The separation the tentative link would break, in words, or null. Separations are few, so each is checked.</summary>
    private string? BrokenSeparation(IdentityGraph graph, List<ProfileIdentity> involved, List<Identifier> fresh, ProfileIdentity? joining, Identifier adding)
    {
        if (_apart.Count == 0) { return null; }
        bool InLink(Identifier i)
        {
            if (i == adding || fresh.Contains(i)) { return true; }
            var owner = graph.OwnerOf(i);
            return owner is not null && (joining?.Id == owner || involved.Exists(p => p.Id == owner));
        }

        foreach (var (identifier, partners) in _apart)
        {
            if (!InLink(identifier)) { continue; }
            foreach (var partner in partners)
            {
                if (InLink(partner)) { return $"{identifier} was unmerged from {partner} and is kept apart from it"; }
            }
        }

        return null;
    }

    private static Dictionary<Identifier, HashSet<Identifier>> BuildApart(IReadOnlyList<IdentitySeparation> separations)
    {
        var apart = new Dictionary<Identifier, HashSet<Identifier>>();
        foreach (var s in separations)
        {
            if (!apart.TryGetValue(s.Identifier, out var set)) { apart[s.Identifier] = set = []; }
            set.UnionWith(s.ApartFrom);
        }

        return apart;
    }

    /// <summary>The limit the tentative link would break, in words, or null when it breaks none.</summary>
    private string? BrokenLimit(List<ProfileIdentity> involved, List<Identifier> fresh, ProfileIdentity? joining, Identifier? adding)
    {
        foreach (var rule in Rules.Types)
        {
            if (rule.MaxPerProfile is not { } max) { continue; }
            var before = fresh.Count(i => i.Type == rule.Type);
            var largestAlone = 0;
            foreach (var p in involved)
            {
                var c = p.Count(rule.Type);
                before += c;
                largestAlone = Math.Max(largestAlone, c);
            }

            var after = before + (joining?.Count(rule.Type) ?? 0) + (adding?.Type == rule.Type ? 1 : 0);
            largestAlone = Math.Max(largestAlone, joining?.Count(rule.Type) ?? 0);
            // Only a link that makes things worse is refused: a profile already over a limit (rules tightened later) still resolves.
            if (after > max && after > before && after > largestAlone)
            {
                return $"linking it would give one profile {after} {rule.Type} values; the limit is {max}";
            }
        }

        return null;
    }
}
