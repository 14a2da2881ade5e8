using System.Text.Json;
using System.Text.Json.Nodes;
using Tessera.Core.Conditions;

namespace Tessera.Core.Audiences;

/// <summary>
/// Which of a profile's events a condition reads: track events named <see cref="Event"/> passing every filter of
/// <see cref="Where"/>, with the number at <see cref="Number"/> when a sum needs it. <see cref="Key"/> is the
/// canonical text of all three, so two conditions that read the same events share one list.
/// </summary>
public sealed record EventSelector(string Event, IReadOnlyList<PropertyFilter> Where, string? Number)
{
    public string Key { get; } = new JsonArray(Event, new JsonArray([.. Where.Select(f => (JsonNode)FilterJson(f))]), Number).ToJsonString();

    public bool Matches(string? eventName, JsonElement message) => eventName == Event && Where.All(f => f.Matches(message));

    /// <summary>The sum property's value when it is a JSON number.</summary>
    public decimal? NumberOf(JsonElement message) =>
        Number is { } path && PropertyFilter.TryRead(message, path, out var v) && v.ValueKind == JsonValueKind.Number && v.TryGetDecimal(out var n) ? n : null;

    public bool Equals(EventSelector? other) => other is not null && other.Key == Key;

    public override int GetHashCode() => Key.GetHashCode(StringComparison.Ordinal);

    private static JsonObject FilterJson(PropertyFilter f)
    {
        var json = new JsonObject { ["property"] = f.Property, ["op"] = f.Op };
        if (f.Value is { } v) { json["value"] = JsonNode.Parse(v.GetRawText()); }
        return json;
    }
}

/// <summary>One event a selector matched: its place in the log, its time, and the selector's number if any.</summary>
public readonly record struct EventFact(long Seq, DateTimeOffset Timestamp, decimal? Number) : IComparable<EventFact>
{
    /// <summary>Log order for sequences: by timestamp, then by log position.</summary>
    public int CompareTo(EventFact other)
    {
        var byTime = Timestamp.CompareTo(other.Timestamp);
        return byTime != 0 ? byTime : Seq.CompareTo(other.Seq);
    }

    public static bool operator <(EventFact left, EventFact right) => left.CompareTo(right) < 0;

    public static bool operator <=(EventFact left, EventFact right) => left.CompareTo(right) <= 0;

    public static bool operator >(EventFact left, EventFact right) => left.CompareTo(right) > 0;

    public static bool operator >=(EventFact left, EventFact right) => left.CompareTo(right) >= 0;
}
