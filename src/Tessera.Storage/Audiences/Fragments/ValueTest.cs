using System.Text.Json;

namespace Tessera.Storage.Audiences.Fragments;

/// <summary>
/// <c>PropertyFilter.Test(op, present, actual, value)</c> as SQL over a <see cref="SqlValue"/>: the one definition of
/// the operators, mirrored. The literal's kind is known here, so each op compiles to the branch C# would take for
/// it; the actual value's kind is tested in SQL. The result is never SQL NULL, so NOT and OR around it are safe.
/// </summary>
internal static class ValueTest
{
    public static string Sql(AudienceSqlBuilder b, string op, SqlValue actual, JsonElement? value)
    {
        var present = actual.Present;
        return op switch
        {
            "exists" => Safe(present),
            "not_exists" => $"NOT {Safe(present)}",
            "neq" => $"NOT {Safe($"{present} AND {Equal(b, actual, value!.Value)}")}",
            "not_in" => $"NOT {Safe($"{present} AND {AnyEqual(b, actual, value!.Value)}")}",
            "eq" => Safe($"{present} AND {Equal(b, actual, value!.Value)}"),
            "in" => Safe($"{present} AND {AnyEqual(b, actual, value!.Value)}"),
            "gt" or "gte" or "lt" or "lte" => Safe($"{present} AND {Compare(b, actual, value!.Value, Operator(op))}"),
            "contains" => Safe($"{present} AND {b.Dialect.Contains(actual.Text, b.Bind(TextOf(value!.Value)))}"),
            "starts_with" => Safe($"{present} AND {b.Dialect.StartsWith(actual.Text, b.Bind(TextOf(value!.Value)))}"),
            "ends_with" => Safe($"{present} AND {b.Dialect.EndsWith(actual.Text, b.Bind(TextOf(value!.Value)))}"),
            _ => "FALSE",
        };
    }

    /// <summary>The SQL comparison operator for <c>eq neq gt gte lt lte</c>.</summary>
    public static string Operator(string op) => op switch
    {
        "eq" => "=",
        "neq" => "<>",
        "gt" => ">",
        "gte" => ">=",
        "lt" => "<",
        "lte" => "<=",
        _ => throw new ArgumentOutOfRangeException(nameof(op), op, "not a comparison"),
    };

    private static string Safe(string condition) => $"coalesce(({condition}), FALSE)";

    private static string AnyEqual(AudienceSqlBuilder b, SqlValue actual, JsonElement values)
    {
        var each = values.EnumerateArray().Select(v => Equal(b, actual, v)).ToList();
        return each.Count == 0 ? "FALSE" : "(" + string.Join(" OR ", each) + ")";
    }

    // PropertyFilter.Equal: numbers by decimal value, strings by value, anything else structurally; JSON null never
    // equals a present value.
    private static string Equal(AudienceSqlBuilder b, SqlValue actual, JsonElement expected) => expected.ValueKind switch
    {
        JsonValueKind.Number => $"({actual.Kind} = 'number' AND {actual.Number} = {b.Dialect.Decimal(b.Bind(expected.GetDecimal()))})",
        JsonValueKind.String => $"({actual.Kind} = 'string' AND {actual.Text} = {b.Dialect.Text(b.Bind(expected.GetString()))})",
        JsonValueKind.True => $"({actual.Kind} = 'boolean' AND {actual.Text} = 'true')",
        JsonValueKind.False => $"({actual.Kind} = 'boolean' AND {actual.Text} = 'false')",
        JsonValueKind.Object => $"({actual.Kind} = 'object' AND {b.Dialect.JsonEquals(actual.Json, b.Bind(expected.GetRawText()))})",
        JsonValueKind.Array => $"({actual.Kind} = 'array' AND {b.Dialect.JsonEquals(actual.Json, b.Bind(expected.GetRawText()))})",
        _ => "FALSE",
    };

    // PropertyFilter.Compare: number with number (or a numeric string); two strings as instants when both are ISO
    // dates, else ordinally; other pairs do not compare.
    private static string Compare(AudienceSqlBuilder b, SqlValue actual, JsonElement expected, string op)
    {
        var d = b.Dialect;
        switch (expected.ValueKind)
        {
            case JsonValueKind.Number:
                return $"({actual.Kind} IN ('number', 'string') AND {actual.Number} {op} {d.Decimal(b.Bind(expected.GetDecimal()))})";
            case JsonValueKind.String:
                var text = $"{d.Ordinal(actual.Text)} {op} {d.Ordinal(d.Text(b.Bind(expected.GetString())))}";
                if (!expected.TryGetDateTimeOffset(out var instant)) { return $"({actual.Kind} = 'string' AND {text})"; }
                return $"({actual.Kind} = 'string' AND CASE WHEN {actual.Instant} IS NOT NULL THEN {actual.Instant} {op} {d.Timestamp(b.Bind(instant.ToUniversalTime()))} ELSE {text} END)";
            default:
                return "FALSE";
        }
    }

    private static string TextOf(JsonElement e) => e.ValueKind == JsonValueKind.String ? e.GetString()! : e.GetRawText();
}
