using Tessera.Core.Audiences;

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
        var scan = b.ScanOf(condition.Event, condition.Window);
        var figure = scan.Add(condition);
        var comparison = condition.Sum ?? condition.Count;
        if (comparison is null) { return In($"SELECT s.pid FROM {scan.Name} s WHERE s.{figure} > 0"); }

        var holds = $"s.{figure} {ValueTest.Operator(comparison.Op)} {b.Dialect.Decimal(b.Bind(comparison.Value))}";
        return comparison.Holds(0)
            ? In($"SELECT s.pid FROM {scan.Name} s WHERE NOT ({holds})", negate: true)
            : In($"SELECT s.pid FROM {scan.Name} s WHERE {holds}");
    }
}
