using Tessera.Core.Audiences;
using Tessera.Storage.Audiences.Dialects;

namespace Tessera.Storage.Audiences.Fragments;

/// <summary>
/// <c>{"event": name, "where": [...], "within"/"from"/"to", "count"/"sum"}</c>: the profile's track events of that
/// name passing every filter inside the window. Without count or sum: at least one. A count or sum is taken over
/// zero events too (0): when the comparison holds for 0, the fragment is "not among the profiles whose events fail
/// it", so profiles with no such event are members.
/// </summary>
internal sealed class EventFragment(EventCondition condition) : AudienceFragment
{
    public override string Sql(AudienceSqlBuilder b)
    {
        var events = new EventSource(b, "ev", condition.Event, trackOnly: true, condition.Window);
        var filters = events.Filters(condition.Where);
        var comparison = condition.Sum ?? condition.Count;
        if (comparison is null) { return In($"SELECT ev.pid FROM {events.Sql()} WHERE {filters}"); }

        var aggregate = condition.Sum is not null ? Sum(b, events, condition.SumProperty!) : "count(*)";
        var holds = $"{aggregate} {ValueTest.Operator(comparison.Op)} {b.Dialect.Decimal(b.Bind(comparison.Value))}";
        return comparison.Holds(0)
            ? In($"SELECT ev.pid FROM {events.Sql()} WHERE {filters} GROUP BY ev.pid HAVING NOT ({holds})", negate: true)
            : In($"SELECT ev.pid FROM {events.Sql()} WHERE {filters} GROUP BY ev.pid HAVING {holds}");
    }

    // Adds the property where it is a JSON number and 0 elsewhere, exactly (DECIMAL / numeric).
    private static string Sum(AudienceSqlBuilder b, EventSource events, string property)
    {
        var value = events.Property(property);
        return $"coalesce(sum(CASE WHEN {value.Kind} = 'number' THEN {value.Number} END), {Zero(b.Dialect)})";
    }

    private static string Zero(AudienceDialect d) => d.AsNumber("0");
}
