using System.Text.Json.Serialization;
using System.Text.RegularExpressions;
using Tessera.Core.Conditions;

namespace Tessera.Core.Profiles;

public enum ComputedFunction
{
    Count,
    Sum,
    Average,
    Min,
    Max,
    First,
    Last,
    MostFrequent,
    DistinctCount,
}

/// <summary>
/// A trait computed from a profile's events: e.g. <c>{"name":"total_spent","function":"sum","event":"Order Completed",
/// "property":"revenue","within":"365d"}</c>. Without <see cref="Property"/>, <c>first</c>/<c>last</c> give the event's time.
/// </summary>
public sealed partial record ComputedTraitDefinition(
    string Name,
    ComputedFunction Function,
    string Event,
    string? Property = null,
    IReadOnlyList<PropertyFilter>? Where = null,
    string? Within = null)
{
    [JsonIgnore]
    public TimeSpan? Window => Within is null ? null : Duration.TryParse(Within, out var d) ? d : null;

    /// <summary>Why the definition cannot be used, naming the field, or null.</summary>
    public string? Problem()
    {
        if (Name is null || !NamePattern().IsMatch(Name)) { return "name: must be 1-64 lower-case letters, digits or underscores, starting with a letter"; }
        if (string.IsNullOrWhiteSpace(Event)) { return "event: is required (the event name to compute over)"; }
        if (!Enum.IsDefined(Function)) { return "function: is not one of count, sum, average, min, max, first, last, most_frequent, distinct_count"; }
        if (Function is ComputedFunction.Sum or ComputedFunction.Average or ComputedFunction.Min or ComputedFunction.Max or ComputedFunction.MostFrequent or ComputedFunction.DistinctCount
            && string.IsNullOrWhiteSpace(Property))
        {
            return $"property: is required for {Function.ToString().ToLowerInvariant()}";
        }

        if (Within is not null && Window is null) { return $"within: '{Within}' is not a duration such as 30d, 12h, 15m or 2w"; }
        for (var i = 0; i < (Where?.Count ?? 0); i++)
        {
            if (Where![i].Problem() is { } problem) { return $"where[{i}]: {problem}"; }
        }

        return null;
    }

    [GeneratedRegex("^[a-z][a-z0-9_]{0,63}$")]
    private static partial Regex NamePattern();
}
