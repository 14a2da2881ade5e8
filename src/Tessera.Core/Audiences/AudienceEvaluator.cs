using System.Text.Json;
using Tessera.Core.Conditions;

namespace Tessera.Core.Audiences;

/// <summary>
/// Evaluates a definition for one profile in memory: the real-time path. The meaning of every node is documented
/// on its type; the SQL compilers implement the same meaning, and a test checks both on random data.
/// </summary>
public static class AudienceEvaluator
{
    public static bool Evaluate(AudienceCondition condition, IAudienceFacts facts, DateTimeOffset now) => Evaluate(condition, facts, now, 0);

    private static bool Evaluate(AudienceCondition condition, IAudienceFacts facts, DateTimeOffset now, int depth) => condition switch
    {
        AllOf all => all.Conditions.All(c => Evaluate(c, facts, now, depth)),
        AnyOf any => any.Conditions.Any(c => Evaluate(c, facts, now, depth)),
        NotCondition not => !Evaluate(not.Condition, facts, now, depth),
        TraitCondition t => facts.TryTrait(t.Trait, out var value) ? PropertyFilter.Test(t.Op, true, value, t.Value) : PropertyFilter.Test(t.Op, false, default, t.Value),
        ComputedCondition c => facts.TryComputed(c.Name, now, out var value) ? PropertyFilter.Test(c.Op, true, value, c.Value) : PropertyFilter.Test(c.Op, false, default, c.Value),
        IdentifierCondition i => Identifier(i, facts),
        EventCondition e => Event(e, facts, now),
        SequenceCondition s => Sequence(s, facts),
        SegmentReference r => depth < AudienceDefinition.MaxDepth && facts.Definition(r.SegmentId) is { } referenced && Evaluate(referenced, facts, now, depth + 1),
        _ => false,
    };

    public static EventSelector SelectorOf(EventCondition e) => new(e.Event, e.Where, e.Sum is null ? null : e.SumProperty);

    public static EventSelector SelectorOf(SequenceStep step) => new(step.Event, step.Where, null);

    private static bool Identifier(IdentifierCondition condition, IAudienceFacts facts)
    {
        var values = facts.Identifiers(condition.Type).Select(v => JsonSerializer.SerializeToElement(v)).ToList();
        return condition.Op switch
        {
            "exists" => values.Count > 0,
            "not_exists" => values.Count == 0,
            "neq" => !values.Any(v => PropertyFilter.Test("eq", true, v, condition.Value)),
            "not_in" => !values.Any(v => PropertyFilter.Test("in", true, v, condition.Value)),
            _ => values.Any(v => PropertyFilter.Test(condition.Op, true, v, condition.Value)),
        };
    }

    private static bool Event(EventCondition condition, IAudienceFacts facts, DateTimeOffset now)
    {
        long count = 0;
        decimal sum = 0;
        foreach (var fact in facts.Events(SelectorOf(condition)))
        {
            if (!condition.Window.Contains(fact.Timestamp, now)) { continue; }
            count++;
            sum += fact.Number ?? 0;
        }

        if (condition.Sum is { } s) { return s.Holds(sum); }
        if (condition.Count is { } c) { return c.Holds(count); }
        return count > 0;
    }

    private static bool Sequence(SequenceCondition condition, IAudienceFacts facts)
    {
        var steps = new IReadOnlyList<EventFact>[condition.Steps.Count];
        for (var i = 0; i < steps.Length; i++)
        {
            var step = condition.Steps[i];
            var matching = facts.Events(SelectorOf(step));
            if (step.First)
            {
                // Only the profile's first event of that name can be this step, and only if it passes the filters.
                var first = facts.FirstEvent(step.Event);
                matching = first is { } f && matching.Any(m => m.Seq == f.Seq) ? [f] : [];
            }

            if (matching.Count == 0) { return false; }
            steps[i] = matching;
        }

        // From each candidate start, taking the earliest later event for every next step gives the shortest chain.
        foreach (var start in steps[0])
        {
            var current = start;
            var complete = true;
            for (var i = 1; i < steps.Length && complete; i++)
            {
                var next = FirstAfter(steps[i], current);
                if (next is null) { complete = false; }
                else { current = next.Value; }
            }

            if (!complete) { return false; } // a later start cannot find what an earlier one could not
            if (current.Timestamp - start.Timestamp <= condition.Within) { return true; }
        }

        return false;
    }

    private static EventFact? FirstAfter(IReadOnlyList<EventFact> facts, EventFact after)
    {
        int lo = 0, hi = facts.Count;
        while (lo < hi)
        {
            var mid = (lo + hi) / 2;
            if (facts[mid].CompareTo(after) <= 0) { lo = mid + 1; } else { hi = mid; }
        }

        return lo < facts.Count ? facts[lo] : null;
    }
}
