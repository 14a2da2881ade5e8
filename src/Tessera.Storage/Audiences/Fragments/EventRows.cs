using Tessera.Core.Audiences;
using Tessera.Core.Conditions;

namespace Tessera.Storage.Audiences.Fragments;

/// <summary>
/// The events a condition reads, as a subquery with the columns <c>pid</c> (the live profile, through
/// <c>profile_ids</c>, so events stored under a merged-away id count for its survivor), <c>ts</c>, <c>seq</c> and
/// <c>doc</c> (the message, for <see cref="Property"/>), and the SQL of property filters on it.
/// </summary>
internal static class EventRows
{
    /// <summary>
    /// Events named <paramref name="eventName"/> (of type track when <paramref name="trackOnly"/>) inside
    /// <paramref name="window"/>; with <paramref name="firstOnly"/>, only each profile's first such event ever, by
    /// (timestamp, seq), before any filter.
    /// </summary>
    public static string From(AudienceSqlBuilder b, string alias, string eventName, bool trackOnly, TimeWindow window, bool firstOnly = false)
    {
        var d = b.Dialect;
        var where = new List<string> { $"e.event = {d.Text(b.Bind(eventName))}" };
        if (trackOnly) { where.Add("e.type = 'track'"); }
        if (window.Within is { } within)
        {
            where.Add($"e.timestamp >= {d.Timestamp(b.Bind((b.Now - within).ToUniversalTime()))}");
            where.Add($"e.timestamp <= {d.Timestamp(b.Bind(b.Now.ToUniversalTime()))}");
        }
        else
        {
            if (window.From is { } from) { where.Add($"e.timestamp >= {d.Timestamp(b.Bind(from.ToUniversalTime()))}"); }
            if (window.To is { } to) { where.Add($"e.timestamp < {d.Timestamp(b.Bind(to.ToUniversalTime()))}"); }
        }

        var events = $"SELECT m.profile_id AS pid, e.timestamp AS ts, e.seq AS seq, e.raw AS raw FROM events e JOIN profile_ids m ON m.id = e.profile_id WHERE {string.Join(" AND ", where)}";
        if (firstOnly)
        {
            events = $"SELECT f.pid, f.ts, f.seq, f.raw FROM (SELECT x.pid, x.ts, x.seq, x.raw, row_number() OVER (PARTITION BY x.pid ORDER BY x.ts, x.seq) AS rn FROM ({events}) x) f WHERE f.rn = 1";
        }

        return $"(SELECT r.pid, r.ts, r.seq, {d.Document("r.raw")} AS doc FROM ({events}) r{d.Fence}) {alias}";
    }

    /// <summary>Every filter of <paramref name="where"/> holds for the row's message (TRUE when there are none).</summary>
    public static string Filters(AudienceSqlBuilder b, string alias, IReadOnlyList<PropertyFilter> where) =>
        where.Count == 0 ? "TRUE" : string.Join(" AND ", where.Select(f => ValueTest.Sql(b, f.Op, Property(b, alias, f.Property), f.Value)));

    /// <summary>
    /// The value <c>PropertyFilter.TryRead</c> reads at <paramref name="path"/>: under <c>properties</c> unless it starts
    /// with <c>context.</c> or <c>traits.</c>; each part names an object member (a part that looks like an array index
    /// is guarded to read objects only, as C# does).
    /// </summary>
    public static SqlValue Property(AudienceSqlBuilder b, string alias, string path)
    {
        var d = b.Dialect;
        var rooted = path.StartsWith("context.", StringComparison.Ordinal) || path.StartsWith("traits.", StringComparison.Ordinal);
        var segments = new List<string>();
        if (!rooted) { segments.Add("properties"); }
        segments.AddRange(path.Split('.'));
        var document = $"{alias}.doc";
        var value = d.JsonAt(document, b.Bind(d.PathParameter(segments)));
        var guards = new List<string>();
        for (var i = 0; i < segments.Count; i++)
        {
            // Pointers and jsonb paths index arrays with such parts; a JSON object member of that name is what C# reads.
            if (segments[i].Length > 0 && segments[i].All(c => char.IsAsciiDigit(c) || c == '-'))
            {
                guards.Add(i == 0 ? "TRUE" : d.IsObjectAt(document, b.Bind(d.PathParameter(segments[..i]))));
            }
        }

        return guards.Count == 0 ? value : value with { Kind = $"(CASE WHEN {string.Join(" AND ", guards)} THEN {value.Kind} END)" };
    }
}
