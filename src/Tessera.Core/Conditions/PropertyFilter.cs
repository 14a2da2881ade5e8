using System.Globalization;
using System.Text.Json;
using System.Text.Json.Serialization;

namespace Tessera.Core.Conditions;

/// <summary>
/// One condition on a message property: <c>{"property": "revenue", "op": "gt", "value": 50}</c>. A path is read
/// under <c>properties</c>, except paths starting with <c>context.</c> or <c>traits.</c>, which start at the message.
/// </summary>
public sealed record PropertyFilter(string Property, string Op, JsonElement? Value = null)
{
    public static readonly IReadOnlyList<string> Operators =
        ["eq", "neq", "gt", "gte", "lt", "lte", "contains", "starts_with", "ends_with", "in", "not_in", "exists", "not_exists"];

    /// <summary>Why this filter is invalid, naming the part at fault, or null.</summary>
    public string? Problem()
    {
        if (string.IsNullOrWhiteSpace(Property)) { return "property is required"; }
        if (!Operators.Contains(Op)) { return $"op '{Op}' is not one of {string.Join(", ", Operators)}"; }
        if (Op is "exists" or "not_exists") { return null; }
        if (Value is not { } v || v.ValueKind is JsonValueKind.Undefined) { return $"value is required for op '{Op}'"; }
        if (Op is "in" or "not_in" && v.ValueKind != JsonValueKind.Array) { return $"value must be an array for op '{Op}'"; }
        if (Op is "gt" or "gte" or "lt" or "lte" && v.ValueKind is not (JsonValueKind.Number or JsonValueKind.String)) { return $"value must be a number or a date for op '{Op}'"; }
        return null;
    }

    /// <summary>Reads the property this filter names from <paramref name="message"/>.</summary>
    public static bool TryRead(JsonElement message, string path, out JsonElement value)
    {
        value = message;
        var rooted = path.StartsWith("context.", StringComparison.Ordinal) || path.StartsWith("traits.", StringComparison.Ordinal);
        if (!rooted && (!message.TryGetProperty("properties"u8, out value) || value.ValueKind != JsonValueKind.Object)) { return false; }
        foreach (var part in path.Split('.'))
        {
            if (value.ValueKind != JsonValueKind.Object || !value.TryGetProperty(part, out value)) { return false; }
        }

        return value.ValueKind != JsonValueKind.Null;
    }

    public bool Matches(JsonElement message)
    {
        var present = TryRead(message, Property, out var actual);
        return Test(Op, present, actual, Value);
    }

    /// <summary>
    /// Applies <paramref name="op"/> to a value that is <paramref name="present"/> (not missing and not null) or
    /// not. The one definition of the operators' meaning, shared by event filters and audience trait conditions;
    /// the SQL compilers mirror it.
    /// </summary>
    public static bool Test(string op, bool present, JsonElement actual, JsonElement? value)
    {
        switch (op)
        {
            case "exists": return present;
            case "not_exists": return !present;
            case "neq": return !present || !Equal(actual, value!.Value);
            case "not_in": return !present || !value!.Value.EnumerateArray().Any(v => Equal(actual, v));
            default: break;
        }

        if (!present) { return false; }
        var expected = value!.Value;
        return op switch
        {
            "eq" => Equal(actual, expected),
            "in" => expected.EnumerateArray().Any(v => Equal(actual, v)),
            "gt" => Compare(actual, expected) is > 0,
            "gte" => Compare(actual, expected) is >= 0,
            "lt" => Compare(actual, expected) is < 0,
            "lte" => Compare(actual, expected) is <= 0,
            "contains" => Text(actual).Contains(Text(expected), StringComparison.Ordinal),
            "starts_with" => Text(actual).StartsWith(Text(expected), StringComparison.Ordinal),
            "ends_with" => Text(actual).EndsWith(Text(expected), StringComparison.Ordinal),
            _ => false,
        };
    }

    private static bool Equal(JsonElement a, JsonElement b)
    {
        // A number beyond decimal's range (1E+400) equals only the same text; it never throws on client data.
        if (a.ValueKind == JsonValueKind.Number && b.ValueKind == JsonValueKind.Number)
        {
            return a.TryGetDecimal(out var x) && b.TryGetDecimal(out var y) ? x == y : a.GetRawText() == b.GetRawText();
        }

        return JsonElement.DeepEquals(a, b) || (a.ValueKind == JsonValueKind.String && b.ValueKind == JsonValueKind.String && a.GetString() == b.GetString());
    }

    /// <summary>Numbers compare as numbers (beyond decimal's range they do not compare), ISO dates as instants, other text ordinally; mixed kinds do not compare.</summary>
    private static int? Compare(JsonElement a, JsonElement b)
    {
        if (a.ValueKind == JsonValueKind.Number && b.ValueKind == JsonValueKind.Number)
        {
            return a.TryGetDecimal(out var x) && b.TryGetDecimal(out var y) ? x.CompareTo(y) : null;
        }

        if (a.ValueKind == JsonValueKind.String && b.ValueKind == JsonValueKind.String)
        {
            if (a.TryGetDateTimeOffset(out var x) && b.TryGetDateTimeOffset(out var y)) { return x.CompareTo(y); }
            return string.CompareOrdinal(a.GetString(), b.GetString());
        }

        if (a.ValueKind == JsonValueKind.String && b.ValueKind == JsonValueKind.Number &&
            decimal.TryParse(a.GetString(), NumberStyles.Float, CultureInfo.InvariantCulture, out var n) && b.TryGetDecimal(out var m))
        {
            return n.CompareTo(m);
        }

        return null;
    }

    private static string Text(JsonElement e) => e.ValueKind == JsonValueKind.String ? e.GetString()! : e.GetRawText();
}

/// <summary>Serialisation of filters as they appear in definitions.</summary>
public static class ConditionJson
{
    public static readonly JsonSerializerOptions Options = new(JsonSerializerDefaults.Web)
    {
        Converters = { new JsonStringEnumConverter(JsonNamingPolicy.SnakeCaseLower) },
        DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull,
    };
}
