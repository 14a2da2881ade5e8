using System.Globalization;
using System.Text.Json;
using Tessera.Core.Audiences;
using Tessera.Core.Conditions;

namespace Tessera.Storage.Audiences.Fragments;

/// <summary>
/// The events a condition reads, as a subquery with the columns <c>pid</c> (the live profile, reached through
/// <c>profile_ids</c>, so events stored under a merged-away id count for its survivor), <c>ts</c>, <c>seq</c> and, per
/// property read, the columns of a <see cref="SqlValue"/> (<c>k</c> kind, <c>x</c> text, <c>n</c> number, <c>t</c>
/// instant, <c>v</c> JSON). Where every property read is a top-level member (<see cref="EventProperties.Holds"/>) and
/// the store keeps them typed (<see cref="Dialects.AudienceDialect.HasEventProperties"/>), they come from
/// <c>event_properties</c>; and when some property is one that every read needs present, the rows are read from that
/// property's rows alone, without the events table. Otherwise each property is taken out of the message once per row
/// (the message is parsed once), and the filters then compare the small extracted values. Ask for every
/// <see cref="Property"/>, <see cref="Read"/> and <see cref="Filters"/> first, then write <see cref="Sql"/>.
/// </summary>
internal sealed class EventSource(AudienceSqlBuilder b, string alias, string eventName, bool trackOnly, TimeWindow window, bool firstOnly = false, bool typed = false)
{
    private readonly List<string> _paths = [];
    private readonly Dictionary<string, SqlValue> _properties = new(StringComparer.Ordinal);
    // Which rows are read: any of these (window, filters the message must be able to pass). The first is the constructor's.
    private readonly List<(TimeWindow Window, IReadOnlyList<PropertyFilter> Where)> _reads = [(window, [])];
    private bool _narrowed;
    // The paths every read needs present (null before the first read).
    private HashSet<string>? _required;
    // Queries of live profile ids outside which the rows do not matter (see Only).
    private readonly List<string> _only = [];

    public string Alias => alias;

    /// <summary>Every filter of <paramref name="where"/> holds for the row's message (TRUE when there are none).</summary>
    public string Filters(IReadOnlyList<PropertyFilter> where) =>
        where.Count == 0 ? "TRUE" : string.Join(" AND ", where.Select(f => ValueTest.Sql(b, f.Op, Property(f.Property), f.Value)));

    /// <summary>
    /// The value <c>PropertyFilter.TryRead</c> reads at <paramref name="path"/>: under <c>properties</c> unless it starts
    /// with <c>context.</c> or <c>traits.</c>; each part names an object member. As columns of the subquery, which
    /// <see cref="Sql"/> fills.
    /// </summary>
    public SqlValue Property(string path)
    {
        if (_properties.TryGetValue(path, out var known)) { return known; }
        var n = _paths.Count.ToString(CultureInfo.InvariantCulture);
        _paths.Add(path);
        return _properties[path] = b.Dialect.JsonValue($"{alias}.v{n}", $"{alias}.k{n}", $"{alias}.x{n}", $"{alias}.n{n}", $"{alias}.t{n}");
    }

    /// <summary>
    /// Says which rows the source must read: those in <paramref name="window"/> whose message may pass
    /// <paramref name="where"/>; <paramref name="needs"/> names a property the read also needs present (a sum's). The
    /// first call replaces the constructor's window; each further call widens the rows read (several conditions sharing
    /// one scan).
    /// </summary>
    public void Read(TimeWindow window, IReadOnlyList<PropertyFilter> where, string? needs = null)
    {
        if (!_narrowed) { _reads.Clear(); }
        _narrowed = true;
        _reads.Add((window, where));
        var required = where.Where(f => !PropertyFilter.Test(f.Op, false, default, f.Value)).Select(f => f.Property).ToHashSet(StringComparer.Ordinal);
        if (needs is not null) { required.Add(needs); }
        if (_required is null) { _required = required; }
        else { _required.IntersectWith(required); }
    }

    /// <summary>
    /// Reads only the rows of the live profiles <paramref name="profiles"/> (a query of one column of ids) returns: for
    /// callers whose result cannot matter for any other profile. With firstOnly, the first event is still each profile's
    /// first of all (a profile's rows are kept or dropped together).
    /// </summary>
    public void Only(string profiles) => _only.Add(profiles);

    /// <summary>The conditions that keep the rows to <see cref="Only"/>'s profiles and the definition's scope.</summary>
    private IEnumerable<string> Scoped(string profile)
    {
        var pid = b.LiveProfile(profile).Live;
        return _only.Append(b.Scope is { } scope ? $"SELECT {scope}.pid FROM {scope}" : null).OfType<string>().Select(q => $"{pid} IN ({q})");
    }

    /// <summary>
    /// A cheap necessary condition on the raw message text for <paramref name="where"/> to hold, or null: a filter that
    /// needs a property to equal a string (eq, in) can only pass when the raw text contains that string, unless the
    /// text holds an escape anywhere (then the string may be written escaped, and the row is read). Exact, and it
    /// keeps the JSON parse off most rows of a selective filter.
    /// </summary>
    private string? MayPass(IReadOnlyList<PropertyFilter> where)
    {
        var d = b.Dialect;
        var parts = new List<string>();
        foreach (var f in where)
        {
            if (f.Value is not { } value) { continue; }
            string[]? strings = f.Op switch
            {
                "eq" when value.ValueKind == JsonValueKind.String => [value.GetString()!],
                "in" when value.ValueKind == JsonValueKind.Array && value.GetArrayLength() > 0 && value.EnumerateArray().All(v => v.ValueKind == JsonValueKind.String) =>
                    [.. value.EnumerateArray().Select(v => v.GetString()!)],
                _ => null,
            };
            if (strings is null || strings.Any(text => text.Length == 0)) { continue; }
            var raw = d.RawText("e.raw");
            parts.Add("(" + string.Join(" OR ", strings.Select(text => d.Contains(raw, b.Bind(text)))) + $" OR {d.Contains(raw, "'\\'")})");
        }

        return parts.Count == 0 ? null : string.Join(" AND ", parts);
    }

    /// <summary>The SQL condition that <paramref name="timestamp"/> lies in <paramref name="window"/> (TRUE for all time).</summary>
    public string Window(string timestamp, TimeWindow window)
    {
        var d = b.Dialect;
        var parts = new List<string>();
        if (window.Within is { } within)
        {
            parts.Add($"{timestamp} >= {d.Timestamp(b.Bind((b.Now - within).ToUniversalTime()))}");
            parts.Add($"{timestamp} <= {d.Timestamp(b.Bind(b.Now.ToUniversalTime()))}");
        }
        else
        {
            if (window.From is { } from) { parts.Add($"{timestamp} >= {d.Timestamp(b.Bind(from.ToUniversalTime()))}"); }
            if (window.To is { } to) { parts.Add($"{timestamp} < {d.Timestamp(b.Bind(to.ToUniversalTime()))}"); }
        }

        return parts.Count == 0 ? "TRUE" : "(" + string.Join(" AND ", parts) + ")";
    }

    /// <summary>
    /// The subquery, aliased: events named as given (of type track when asked) inside the window; with firstOnly, only
    /// each profile's first such event ever, by (timestamp, seq), before any filter.
    /// </summary>
    public string Sql() =>
        typed && !firstOnly && _paths.Count > 0 && b.Dialect.HasEventProperties && _paths.All(EventProperties.Holds) ? TypedSql() : JsonSql();

    /// <summary>The rows' windows (and, from the JSON, what their messages may pass), ORed; null when every row is read.</summary>
    private string? Reads(string timestamp, bool json)
    {
        var bound = b.Bound;
        var reads = _reads.Select(r => (Window: Window(timestamp, r.Window), Raw: json && !firstOnly ? MayPass(r.Where) : null))
            .Select(r => r.Raw is null ? r.Window : $"({r.Window} AND {r.Raw})")
            .Distinct()
            .ToList();
        if (!reads.Contains("TRUE")) { return "(" + string.Join(" OR ", reads) + ")"; }
        // Every row is read: the values bound for the other reads are not in the text (DuckDB counts the placeholders).
        b.Unbind(bound);
        return null;
    }

    private string TypedSql()
    {
        var d = b.Dialect;
        var name = d.Text(b.Bind(eventName));
        var driver = _paths.FindIndex(p => _required?.Contains(p) == true);
        var columns = new List<string>();
        var joins = new List<string>();
        string from, profile, ts, seq;
        List<string> conditions;
        if (driver >= 0)
        {
            // Every read needs this property: its rows are the rows.
            var p = $"p{driver.ToString(CultureInfo.InvariantCulture)}";
            (from, profile, ts, seq) = ($"event_properties {p}", $"{p}.profile_id", $"{p}.ts", $"{p}.seq");
            conditions = [$"{p}.event = {name}", $"{p}.name = {d.Text(b.Bind(_paths[driver]))}", $"{profile} IS NOT NULL", .. trackOnly ? [$"{p}.track"] : Array.Empty<string>()];
        }
        else
        {
            (from, profile, ts, seq) = ("events e", "e.profile_id", "e.timestamp", "e.seq");
            conditions = [$"e.event = {name}", $"{profile} IS NOT NULL", .. trackOnly ? ["e.type = 'track'"] : Array.Empty<string>()];
        }

        if (Reads(ts, json: false) is { } reads) { conditions.Add(reads); }
        conditions.AddRange(Scoped(profile));
        var where = string.Join(" AND ", conditions);

        for (var i = 0; i < _paths.Count; i++)
        {
            var n = i.ToString(CultureInfo.InvariantCulture);
            var p = $"p{n}";
            if (i != driver)
            {
                joins.Add($"LEFT JOIN (SELECT x.seq, x.kind, x.text, x.num, x.instant FROM event_properties x WHERE x.event = {name} AND x.name = {d.Text(b.Bind(_paths[i]))}) {p} ON {p}.seq = {seq}");
            }

            // Objects and arrays keep their JSON text in text: that is the value to compare them by.
            columns.Add($"{p}.text AS v{n}, {p}.kind AS k{n}, {p}.text AS x{n}, {p}.num AS n{n}, {p}.instant AS t{n}");
        }

        var (live, join) = b.LiveProfile(profile);
        return $"(SELECT {live} AS pid, {ts} AS ts, {seq} AS seq, {string.Join(", ", columns)} FROM {from} {join} {string.Join(" ", joins)} WHERE {where}) {alias}";
    }

    private string JsonSql()
    {
        var d = b.Dialect;
        var where = new List<string> { $"e.event = {d.Text(b.Bind(eventName))}" };
        if (trackOnly) { where.Add("e.type = 'track'"); }
        var withRaw = _paths.Count > 0;
        if (Reads("e.timestamp", json: withRaw) is { } reads) { where.Add(reads); }
        where.AddRange(Scoped("e.profile_id"));

        var (live, join) = b.LiveProfile("e.profile_id");
        var events = $"SELECT {live} AS pid, e.timestamp AS ts, e.seq AS seq{(withRaw ? ", e.raw AS raw" : "")} " +
            $"FROM events e {join} WHERE e.profile_id IS NOT NULL AND {string.Join(" AND ", where)}";
        if (firstOnly) { events = d.FirstPerProfile(events, withRaw); }

        if (_paths.Count == 0) { return $"(SELECT r.pid, r.ts, r.seq FROM ({events}) r) {alias}"; }
        var extractedColumns = new List<string>();
        var described = new List<string>();
        var kinds = new List<string>();
        for (var i = 0; i < _paths.Count; i++)
        {
            var n = i.ToString(CultureInfo.InvariantCulture);
            var path = _paths[i];
            var rooted = path.StartsWith("context.", StringComparison.Ordinal) || path.StartsWith("traits.", StringComparison.Ordinal);
            var segments = new List<string>();
            if (!rooted) { segments.Add("properties"); }
            segments.AddRange(path.Split('.'));
            var guards = new List<string>();
            for (var s = 1; s < segments.Count; s++)
            {
                // Pointers and jsonb paths index arrays with such parts; a JSON object member of that name is what C# reads.
                if (segments[s].Length > 0 && segments[s].All(c => char.IsAsciiDigit(c) || c == '-'))
                {
                    guards.Add(d.IsObjectAt("r.doc", b.Bind(d.PathParameter(segments[..s]))));
                }
            }

            // Taken out once (v), then described once (k: kind, x: text, n: number, t: instant); every test reads those
            // columns (the planners drop the ones no test reads).
            var extracted = d.Extract("r.doc", b.Bind(d.PathParameter(segments)));
            extractedColumns.Add($"{(guards.Count == 0 ? extracted : $"CASE WHEN {string.Join(" AND ", guards)} THEN {extracted} END")} AS v{n}");
            described.Add($"d.v{n}, d.k{n}, d.x{n}, {d.JsonNumber($"d.v{n}", $"d.k{n}", $"d.x{n}")} AS n{n}, {d.JsonInstant($"d.k{n}", $"d.x{n}")} AS t{n}");
            kinds.Add($"s.v{n}, {d.JsonKind($"s.v{n}")} AS k{n}, {d.JsonText($"s.v{n}")} AS x{n}");
        }

        // Fenced layers: the document is parsed once per row, each property taken out of it once, then described once.
        var parsed = $"SELECT q.pid, q.ts, q.seq, {d.Document(d.RawText("q.raw"))} AS doc FROM ({events}) q{d.Fence}";
        var extractedSql = $"SELECT r.pid, r.ts, r.seq, {string.Join(", ", extractedColumns)} FROM ({parsed}) r{d.Fence}";
        var kindsSql = $"SELECT s.pid, s.ts, s.seq, {string.Join(", ", kinds)} FROM ({extractedSql}) s{d.Fence}";
        return $"(SELECT d.pid, d.ts, d.seq, {string.Join(", ", described)} FROM ({kindsSql}) d{d.Fence}) {alias}";
    }
}
