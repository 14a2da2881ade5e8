using System.Globalization;
using Tessera.Core.Audiences;

namespace Tessera.Storage.Audiences.Fragments;

/// <summary>
/// <c>{"sequence": [steps], "within": d}</c>: the profile has events e1 &lt; e2 &lt; ... in log order (timestamp, then
/// seq), each passing its step, with last - first ≤ d. A <c>first</c> step only takes the profile's first track event
/// of that name ever, if it passes the step's filters. As in memory, from each candidate start the chain takes the
/// earliest later event for every next step (the shortest chain from that start): the steps' candidate events are
/// ranked in log order per profile (<c>AudienceDialect.LogOrder</c>), and each step keeps, per start, the lowest rank after the previous one that is
/// still inside the window.
/// </summary>
internal sealed class SequenceFragment(SequenceCondition condition) : AudienceFragment
{
    public override string Sql(AudienceSqlBuilder b)
    {
        var steps = condition.Steps;
        if (steps.Count == 0) { return "FALSE"; }
        // Each step's candidate events. A first step's are found by grouping all of the profile's events of that name, so
        // they are only looked for among the profiles that have candidates for every other step: no other can match.
        var candidates = new List<string>();
        var ctes = new List<string>();
        var others = new List<string>();
        var sources = new EventSource[steps.Count];
        for (var i = 0; i < steps.Count; i++)
        {
            sources[i] = new EventSource(b, b.Alias("sv"), steps[i].Event, trackOnly: true, TimeWindow.AllTime, firstOnly: steps[i].First, typed: true);
            sources[i].Read(TimeWindow.AllTime, steps[i].Where);
        }

        for (var pass = 0; pass < 2; pass++)
        {
            for (var i = 0; i < steps.Count; i++)
            {
                // Steps that are not "first" are written first (pass 0), so the first steps can be kept to their profiles.
                if (steps[i].First != (pass == 1)) { continue; }
                var events = sources[i];
                if (steps[i].First) { foreach (var other in others) { events.Only($"SELECT o.pid FROM {other} o"); } }
                var filters = events.Filters(steps[i].Where);
                var step = b.Alias("step");
                ctes.Add($"{step} AS MATERIALIZED (SELECT {events.Alias}.pid, {events.Alias}.ts, {events.Alias}.seq, {Number(i + 1)} AS step FROM {events.Sql()} WHERE {filters})");
                candidates.Add($"SELECT * FROM {step}");
                if (!steps[i].First) { others.Add(step); }
            }
        }

        var ranked = b.Alias("ranked");
        // Bound only when a second step uses it: DuckDB numbers parameters by the placeholders it sees.
        var within = steps.Count > 1 ? b.Bind(condition.Within.Ticks / TimeSpan.TicksPerMicrosecond) : "";
        var chain = b.Alias("chain");
        ctes.AddRange(
        [
            $"{ranked} AS MATERIALIZED (SELECT c.pid, c.ts, c.step, {b.Dialect.LogOrder} AS rk FROM ({string.Join(" UNION ALL ", candidates)}) c)",
            $"{chain}1 AS (SELECT r.pid, r.ts AS start_ts, r.rk AS start_rk, r.rk AS cur FROM {ranked} r WHERE r.step = 1)",
        ]);
        for (var i = 2; i <= steps.Count; i++)
        {
            ctes.Add($"""
                {chain}{Number(i)} AS (SELECT a.pid, a.start_ts, a.start_rk, min(r.rk) AS cur FROM {chain}{Number(i - 1)} a
                    JOIN {ranked} r ON r.pid = a.pid AND r.step = {Number(i)} AND r.rk > a.cur AND r.ts <= {b.Dialect.PlusMicroseconds("a.start_ts", within)}
                    GROUP BY a.pid, a.start_ts, a.start_rk)
                """);
        }

        return In($"WITH {string.Join(",\n", ctes)}\nSELECT {chain}{Number(steps.Count)}.pid FROM {chain}{Number(steps.Count)}");
    }

    private static string Number(int i) => i.ToString(CultureInfo.InvariantCulture);
}
