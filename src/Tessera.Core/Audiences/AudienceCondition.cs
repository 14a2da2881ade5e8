using System.Text.Json;
using Tessera.Core.Conditions;

namespace Tessera.Core.Audiences;

/// <summary>
/// One node of an audience definition (CONTRACT.md, "Segment definition language"). A definition is one condition;
/// <c>AudienceDefinition.Parse</c> builds the tree from JSON, <c>AudienceText</c> from the text form.
/// Every node evaluates both in memory (<see cref="AudienceEvaluator"/>, the real-time path) and as SQL (the
/// stores' compilers), and the two must agree on the same data.
/// </summary>
public abstract record AudienceCondition;

/// <summary><c>{"and": [...]}</c>: every condition holds.</summary>
public sealed record AllOf(IReadOnlyList<AudienceCondition> Conditions) : AudienceCondition;

/// <summary><c>{"or": [...]}</c>: at least one condition holds.</summary>
public sealed record AnyOf(IReadOnlyList<AudienceCondition> Conditions) : AudienceCondition;

/// <summary><c>{"not": C}</c>.</summary>
public sealed record NotCondition(AudienceCondition Condition) : AudienceCondition;

/// <summary>
/// <c>{"trait": "plan", "op": "eq", "value": "pro"}</c>: the profile's current value of a trait, compared as a
/// message property is (<c>PropertyFilter.Test</c>). An absent trait satisfies only <c>neq</c>, <c>not_in</c>
/// and <c>not_exists</c>.
/// </summary>
public sealed record TraitCondition(string Trait, string Op, JsonElement? Value) : AudienceCondition;

/// <summary>
/// <c>{"identifier": "email", "op": "exists"}</c>: the profile's identifiers of one type. <c>exists</c> means it
/// has at least one; <c>not_exists</c>, <c>neq</c> and <c>not_in</c> mean none of them matches the positive form;
/// every other op means at least one of them satisfies it.
/// </summary>
public sealed record IdentifierCondition(string Type, string Op, JsonElement? Value) : AudienceCondition;

/// <summary><c>{"computed": "total_spent", "op": "gte", "value": 500}</c>: a computed trait's value as of now.</summary>
public sealed record ComputedCondition(string Name, string Op, JsonElement? Value) : AudienceCondition;

/// <summary>
/// The events an event condition looks at: <see cref="Within"/> back from now (<c>now - within ≤ timestamp ≤ now</c>),
/// or absolute bounds (<c>from ≤ timestamp &lt; to</c>, either may be open), or all time when all are null.
/// </summary>
public sealed record TimeWindow(TimeSpan? Within, DateTimeOffset? From, DateTimeOffset? To)
{
    public static readonly TimeWindow AllTime = new(null, null, null);

    public bool Contains(DateTimeOffset timestamp, DateTimeOffset now) =>
        Within is { } within
            ? timestamp >= now - within && timestamp <= now
            : (From is null || timestamp >= From) && (To is null || timestamp < To);
}

/// <summary>A number compared with <c>eq neq gt gte lt lte</c>: <c>{"op": "gte", "value": 3}</c>.</summary>
public sealed record NumberComparison(string Op, decimal Value)
{
    public static readonly IReadOnlyList<string> Operators = ["eq", "neq", "gt", "gte", "lt", "lte"];

    public bool Holds(decimal actual) => Op switch
    {
        "eq" => actual == Value,
        "neq" => actual != Value,
        "gt" => actual > Value,
        "gte" => actual >= Value,
        "lt" => actual < Value,
        "lte" => actual <= Value,
        _ => false,
    };
}

/// <summary>
/// <c>{"event": "Order Completed", "where": [...], "within": "30d", "count": {...}}</c> or with <c>"sum":
/// {"property": "revenue", ...}</c>. Looks at the profile's track events of that name (across every profile id
/// merged into it) that pass every filter and fall in the window. Without count or sum: at least one. A count or
/// sum is taken over zero events too (count 0, sum 0), so <c>count eq 0</c> holds for a profile that never did it.
/// A sum adds the property where it is a JSON number and skips it elsewhere.
/// </summary>
public sealed record EventCondition(
    string Event,
    IReadOnlyList<PropertyFilter> Where,
    TimeWindow Window,
    NumberComparison? Count = null,
    string? SumProperty = null,
    NumberComparison? Sum = null) : AudienceCondition;

/// <summary>One step of a sequence. <see cref="First"/>: the step's event must be the profile's first event of that name ever.</summary>
public sealed record SequenceStep(string Event, IReadOnlyList<PropertyFilter> Where, bool First = false);

/// <summary>
/// <c>{"sequence": [steps], "within": "15m"}</c>: the steps happen in order, each after the previous one (later
/// timestamp, or the same timestamp and a later log position), the last no more than <see cref="Within"/> after
/// the first. Looks at all of the profile's history, not a window back from now.
/// </summary>
public sealed record SequenceCondition(IReadOnlyList<SequenceStep> Steps, TimeSpan Within) : AudienceCondition;

/// <summary><c>{"segment": "SEGMENT_ID"}</c>: membership of another audience, evaluated from its definition.</summary>
public sealed record SegmentReference(string SegmentId) : AudienceCondition;
