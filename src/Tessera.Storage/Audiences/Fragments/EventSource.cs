using System.Globalization;
using System.Text.Json;
using Tessera.Core.Audiences;
using Tessera.Core.Conditions;

namespace Tessera.Storage.Audiences.Fragments;

/// <summary>
/// The events a condition reads, as a subquery with the columns <c>pid</c> (the live profile, reached through
/// <c>profile_ids</c>, so events stored under a merged-away id count for its survivor), <c>ts</c>, <c>seq</c> and one
/// column per property the condition reads. Each property is taken out of the message once per row (the message is
/// parsed once), and the filters then compare the small extracted values. Ask for every <see cref="Property"/> and
/// <see cref="Filters"/> first, then write <see cref="Sql"/>.
/// </summary>
internal sealed class EventSource(AudienceSqlBuilder b, string alias, string eventName, bool trackOnly, TimeWindow window, bool firstOnly = false)
{
    private readonly List<string> _extracted = [];
    private readonly List<string> _described = [];
    private readonly List<string> _kinds = [];
    private readonly Dictionary<string, SqlValue> _properties = new(StringComparer.Ordinal);
    // Which rows are read: any of these (window, condition on the raw text) pairs. The first is the constructor's.
    private readonly List<(TimeWindow Window, string? Raw)> _reads = [(window, null)];

    public string Alias => alias;

    /// <summary>Every filter of <paramref name="where"/> holds for the row's message (TRUE when there are none).</summary>
    public string Filters(IReadOnlyList<PropertyFilter> where) =>
        where.Count == 0 ? "TRUE" : string.Join(" AND ", where.Select(f => ValueTest.Sql(b, f.Op, Property(f.Property), f.Value)));

    /// <summary>
    /// The value <c>PropertyFilter.TryRead</c> reads at <paramref name="path"/>: under <c>properties</c> unless it starts
    /// with <c>context.</c> or <c>traits.</c>; each part names an object member (a part that looks like an array index
    /// is guarded to read objects only, as C# does).
    /// </summary>
    public SqlValue Property(string path)
    {
        if (_properties.TryGetValue(path, out var known)) { return known; }
        var d = b.Dialect;
        var rooted = path.StartsWith("context.", StringComparison.Ordinal) || path.StartsWith("traits.", StringComparison.Ordinal);
        var segments = new List<string>();
        if (!rooted) { segments.Add("properties"); }
        segments.AddRange(path.Split('.'));
        var guards = new List<string>();
        for (var i = 1; i < segments.Count; i++)
        {
            // Pointers and jsonb paths index arrays with such parts; a JSON object member of that name is what C# reads.
            if (segments[i].Length > 0 && segments[i].All(c => char.IsAsciiDigit(c) || c == '-'))
            {
                guards.Add(d.IsObjectAt("r.doc", b.Bind(d.PathParameter(segments[..i]))));
            }
        }

        // Taken out once (v), then described once (k: kind, x: text, n: number, t: instant); every test reads those
        // columns (the planners drop the ones no test reads).
        var n = _extracted.Count.ToString(CultureInfo.InvariantCulture);
        var extracted = d.Extract("r.doc", b.Bind(d.PathParameter(segments)));
        _extracted.Add($"{(guards.Count == 0 ? extracted : $"CASE WHEN {string.Join(" AND ", guards)} THEN {extracted} END")} AS v{n}");
        _described.Add($"d.v{n}, d.k{n}, d.x{n}, {d.JsonNumber($"d.v{n}", $"d.k{n}", $"d.x{n}")} AS n{n}, {d.JsonInstant($"d.k{n}", $"d.x{n}")} AS t{n}");
        _kinds.Add($"s.v{n}, {d.JsonKind($"s.v{n}")} AS k{n}, {d.JsonText($"s.v{n}")} AS x{n}");
        return _properties[path] = d.JsonValue($"{alias}.v{n}", $"{alias}.k{n}", $"{alias}.x{n}", $"{alias}.n{n}", $"{alias}.t{n}");
    }

    /// <summary>
    /// Says which rows the source must read: those in <paramref name="window"/> whose message may pass
    /// <paramref name="where"/> (see <see cref="MayPass"/>). The first call replaces the constructor's window; each
    /// further call widens the rows read (several conditions sharing one scan).
    /// </summary>
    public void Read(TimeWindow window, IReadOnlyList<PropertyFilter> where)
    {
        if (_reads is [(_, null)] && !_narrowed) { _reads.Clear(); }
        _narrowed = true;
        _reads.Add((window, firstOnly ? null : MayPass(where)));
    }

    private bool _narrowed;

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
            parts.Add("(" + string.Join(" OR ", strings.Select(text => d.Contains("e.raw", b.Bind(text)))) + $" OR {d.Contains("e.raw", "'\\'")})");
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
    public string Sql()
    {
        var d = b.Dialect;
        var where = new List<string> { $"e.event = {d.Text(b.Bind(eventName))}" };
        if (trackOnly) { where.Add("e.type = 'track'"); }
        var reads = _reads.Distinct().Select(r => r.Raw is null ? Window("e.timestamp", r.Window) : $"({Window("e.timestamp", r.Window)} AND {r.Raw})").ToList();
        if (!reads.Contains("TRUE")) { where.Add("(" + string.Join(" OR ", reads) + ")"); }

        // Only merged-away ids need mapping to their live profile: a small hash table, probed by every event.
        var withRaw = _extracted.Count > 0;
        var events = $"SELECT coalesce(m.profile_id, e.profile_id) AS pid, e.timestamp AS ts, e.seq AS seq{(withRaw ? ", e.raw AS raw" : "")} " +
            $"FROM events e LEFT JOIN profile_ids m ON m.id = e.profile_id AND m.id <> m.profile_id WHERE e.profile_id IS NOT NULL AND {string.Join(" AND ", where)}";
        if (firstOnly) { events = d.FirstPerProfile(events, withRaw); }

        if (_extracted.Count == 0) { return $"(SELECT r.pid, r.ts, r.seq FROM ({events}) r) {alias}"; }
        // Fenced layers: the document is parsed once per row, each property taken out of it once, then described once.
        var parsed = $"SELECT q.pid, q.ts, q.seq, {d.Document("q.raw")} AS doc FROM ({events}) q{d.Fence}";
        var extracted = $"SELECT r.pid, r.ts, r.seq, {string.Join(", ", _extracted)} FROM ({parsed}) r{d.Fence}";
        var kinds = $"SELECT s.pid, s.ts, s.seq, {string.Join(", ", _kinds)} FROM ({extracted}) s{d.Fence}";
        return $"(SELECT d.pid, d.ts, d.seq, {string.Join(", ", _described)} FROM ({kinds}) d{d.Fence}) {alias}";
    }
}
