using Tessera.Core.Audiences;
using Tessera.Core.Profiles;
using Tessera.Storage.Audiences.Dialects;
using Tessera.Storage.Audiences.Fragments;

namespace Tessera.Storage.Audiences;

/// <summary>
/// What the condition fragments write with: the dialect, the parameters bound so far (<see cref="Bind"/> is the
/// only way a value reaches the query), fresh aliases, and what the definition refers to (computed traits,
/// other audiences, the current segment depth).
/// </summary>
internal sealed class AudienceSqlBuilder(
    AudienceDialect dialect,
    DateTimeOffset now,
    IReadOnlyList<ComputedTraitDefinition> computed,
    Func<string, AudienceCondition?> segments,
    bool mergedIds = true)
{
    private readonly List<object?> _parameters = [];
    private readonly Dictionary<string, EventScan> _scans = new(StringComparer.Ordinal);
    private int _aliases;

    /// <summary>The live profile being tested, in every fragment's predicate.</summary>
    public const string Profile = "p.id";

    public AudienceDialect Dialect { get; } = dialect;

    public DateTimeOffset Now { get; } = now;

    public IReadOnlyList<object?> Parameters => _parameters;

    /// <summary>
    /// A common table expression (column <c>pid</c>) holding every profile that can be a member, or null: event reads
    /// may skip the rows of other profiles (<see cref="AudienceQuery"/> sets it from a condition the whole definition
    /// requires).
    /// </summary>
    public string? Scope { get; private set; }

    private string? _scopeSql;

    /// <summary>The condition whose holders are the scope: its fragment reads the scope instead of computing them again.</summary>
    public AudienceCondition? ScopeCondition { get; private set; }

    /// <summary>Makes <paramref name="profiles"/> (a query of one column of live profile ids, those that hold <paramref name="condition"/>) the scope.</summary>
    public void SetScope(AudienceCondition condition, string profiles)
    {
        ScopeCondition = condition;
        Scope = Alias("scope_");
        _scopeSql = $"{Scope} AS MATERIALIZED (SELECT q.pid FROM ({profiles}) q(pid))";
    }

    /// <summary>How many segment references enclose the fragment being written.</summary>
    public int Depth { get; set; }

    public ComputedTraitDefinition? Computed(string name) => computed.FirstOrDefault(d => d.Name == name);

    public AudienceCondition? Segment(string id) => segments(id);

    /// <summary>
    /// The live profile of a row whose stored profile id is <paramref name="profile"/>, and the join it needs (write it
    /// after the row's table): only merged-away ids need mapping, through a small hash table of them. When the store
    /// says no id was ever merged away, the stored id is the live one and there is no join.
    /// </summary>
    public (string Live, string Join) LiveProfile(string profile) => mergedIds
        ? ($"coalesce(m.profile_id, {profile})", $"LEFT JOIN profile_ids m ON m.id = {profile} AND m.id <> m.profile_id")
        : (profile, "");

    /// <summary>Adds a parameter and returns its placeholder.</summary>
    public string Bind(object? value)
    {
        _parameters.Add(value);
        return "$" + _parameters.Count.ToString(System.Globalization.CultureInfo.InvariantCulture);
    }

    /// <summary>How many parameters are bound so far; with <see cref="Unbind"/>, a way to take back values whose SQL was dropped.</summary>
    public int Bound => _parameters.Count;

    /// <summary>Drops the parameters bound after the first <paramref name="count"/> (their placeholders must not be in the text).</summary>
    public void Unbind(int count) => _parameters.RemoveRange(count, _parameters.Count - count);

    /// <summary>The shared pass over the track events named <paramref name="eventName"/>, made on first use.</summary>
    public EventScan ScanOf(string eventName, TimeWindow window)
    {
        if (!_scans.TryGetValue(eventName, out var scan)) { _scans[eventName] = scan = new EventScan(this, Alias("events_"), eventName, window); }
        return scan;
    }

    /// <summary>The common table expressions the fragments asked for, to write before the query (none: empty).</summary>
    public string With()
    {
        var ctes = _scans.Values.Select(s => s.Sql()).Prepend(_scopeSql).OfType<string>().ToList();
        return ctes.Count == 0 ? "" : "WITH " + string.Join(",\n", ctes) + "\n";
    }

    /// <summary>A table alias not used elsewhere in the query.</summary>
    public string Alias(string prefix) => prefix + (++_aliases).ToString(System.Globalization.CultureInfo.InvariantCulture);
}
