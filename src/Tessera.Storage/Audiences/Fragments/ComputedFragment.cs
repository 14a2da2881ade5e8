using System.Text.Json;
using Tessera.Core.Audiences;
using Tessera.Core.Conditions;
using Tessera.Core.Profiles;

namespace Tessera.Storage.Audiences.Fragments;

/// <summary>
/// <c>{"computed": name, ...}</c>: the computed trait's definition (<see cref="ComputedTraitDefinition"/>) compiled
/// to an aggregate over the profile's events, with <c>ComputedTraits</c>' values: events of that name of any type,
/// passing its filters, inside its window back from now, and (with a property) having the property. count and
/// distinct_count of nothing are 0, everything else of nothing is absent; average rounds to 6 places half to even;
/// first/last without a property give the time as ISO text. The value then meets the condition's op as a trait
/// does. An unknown computed trait is absent.
/// </summary>
internal sealed class ComputedFragment(ComputedCondition condition) : AudienceFragment
{
    public override string Sql(AudienceSqlBuilder b)
    {
        var d = b.Dialect;
        var definition = b.Computed(condition.Name);
        var empty = definition is null ? null : EmptyValue(definition);
        var holdsWhenEmpty = empty is { } e ? PropertyFilter.Test(condition.Op, true, e, condition.Value) : PropertyFilter.Test(condition.Op, false, default, condition.Value);
        if (definition is null) { return holdsWhenEmpty ? "TRUE" : "FALSE"; }

        var window = new TimeWindow(definition.Window, null, null);
        var events = new EventSource(b, "cv", definition.Event, trackOnly: false, window);
        events.Read(window, definition.Where ?? []);
        var where = new List<string> { events.Filters(definition.Where ?? []) };
        var property = definition.Property is { } path ? events.Property(path) : null;
        if (property is not null) { where.Add(property.Present); }

        string values;
        SqlValue value;
        if (definition.Function == ComputedFunction.MostFrequent)
        {
            // The value seen most often; a tie goes to the value seen first in log order, as the in-memory count keeps them.
            var counted = $"SELECT cv.pid, {property!.Kind} || ':' || {property.Json} AS k, min({property.Json}) AS j, count(*) AS n, min(cv.seq) AS first_seq FROM {events.Sql()} WHERE {string.Join(" AND ", where)} GROUP BY cv.pid, k";
            values = $"SELECT w.pid, w.j FROM (SELECT q.pid, q.j, row_number() OVER (PARTITION BY q.pid ORDER BY q.n DESC, q.first_seq) AS rn FROM ({counted}) q) w WHERE w.rn = 1";
            value = d.JsonValue(d.Document("v.j"));
        }
        else
        {
            var (columns, aggregate) = Aggregate(b, definition, property);
            values = $"SELECT cv.pid, {columns} FROM {events.Sql()} WHERE {string.Join(" AND ", where)} GROUP BY cv.pid";
            value = aggregate;
        }

        var holds = ValueTest.Sql(b, condition.Op, value, condition.Value);
        return holdsWhenEmpty
            ? In($"SELECT v.pid FROM ({values}) v WHERE NOT {holds}", negate: true)
            : In($"SELECT v.pid FROM ({values}) v WHERE {holds}");
    }

    /// <summary>The value a profile without matching events has: 0 for counts, none otherwise.</summary>
    private static JsonElement? EmptyValue(ComputedTraitDefinition d) =>
        d.Function is ComputedFunction.Count or ComputedFunction.DistinctCount ? JsonSerializer.SerializeToElement(0) : null;

    /// <summary>The aggregate columns over the rows <c>cv</c> and the value they make, read from the grouped row <c>v</c>.</summary>
    private static (string Columns, SqlValue Value) Aggregate(AudienceSqlBuilder b, ComputedTraitDefinition definition, SqlValue? property)
    {
        var d = b.Dialect;
        var number = property is null ? "NULL" : $"(CASE WHEN {property.Kind} = 'number' THEN {property.Number} END)";
        SqlValue Number(string expression, string? presentWhen = null) =>
            new(presentWhen is null ? "'number'" : $"(CASE WHEN {presentWhen} THEN 'number' END)", d.Text(expression), expression, "NULL", "NULL");
        switch (definition.Function)
        {
            case ComputedFunction.Count:
                return ("count(*) AS n", Number(d.AsNumber("v.n")));
            case ComputedFunction.Sum:
                return ($"coalesce(sum({number}), {d.AsNumber("0")}) AS s", Number("v.s"));
            case ComputedFunction.Average:
                return ($"sum({number}) AS s, count({number}) AS n", Number($"(CASE WHEN v.n > 0 THEN {d.Average6("v.s", "v.n")} END)", "v.n > 0"));
            case ComputedFunction.Min:
                return ($"min({number}) AS x", Number("v.x", "v.x IS NOT NULL"));
            case ComputedFunction.Max:
                return ($"max({number}) AS x", Number("v.x", "v.x IS NOT NULL"));
            case ComputedFunction.DistinctCount:
                return ($"count(DISTINCT {property!.Kind} || ':' || {property.Json}) AS n", Number(d.AsNumber("v.n")));
            case ComputedFunction.First or ComputedFunction.Last when property is null:
                var at = definition.Function == ComputedFunction.First ? "min(cv.ts)" : "max(cv.ts)";
                return ($"{at} AS t", new SqlValue("'string'", d.TimeText("v.t"), "NULL", d.Milliseconds("v.t"), "NULL"));
            case ComputedFunction.First or ComputedFunction.Last:
                return ($"{d.ValueAtEnd(property!.Json, "cv.ts", "cv.seq", definition.Function == ComputedFunction.Last)} AS j", d.JsonValue(d.Document("v.j")));
            case ComputedFunction.MostFrequent:
            default:
                throw new NotSupportedException("most_frequent is compiled by MostFrequent");
        }
    }
}
