using System.Globalization;
using System.Text.Json;

namespace Tessera.Storage.Profiles;

/// <summary>
/// A present JSON value as typed columns, worked out in C# with the exact rules of <c>PropertyFilter.Test</c>: the JSON
/// kind; the string's value or, for other kinds, the JSON text as written (what <c>PropertyFilter</c> compares for
/// contains/starts_with/ends_with and objects); the number (a JSON number, or a string that reads as one); the instant (a
/// string that is an ISO 8601 date). Trait and event property conditions then compare columns instead of parsing JSON.
/// </summary>
internal readonly record struct TypedValue(string Kind, string? Text, decimal? Number, DateTimeOffset? Instant)
{
    /// <summary>The widest number both stores keep exactly (DuckDB's DECIMAL(38,12)); a larger one is kept without a number.</summary>
    private const decimal NumberLimit = 99_999_999_999_999_999_999_999_999m;

    public static TypedValue Of(JsonElement e) => e.ValueKind switch
    {
        JsonValueKind.String => new TypedValue("string", e.GetString(), ParseNumber(e.GetString()!), e.TryGetDateTimeOffset(out var at) ? at : null),
        JsonValueKind.Number => new TypedValue("number", e.GetRawText(), e.TryGetDecimal(out var n) ? Fit(n) : null, null),
        JsonValueKind.True or JsonValueKind.False => new TypedValue("boolean", e.GetRawText(), null, null),
        JsonValueKind.Object => new TypedValue("object", e.GetRawText(), null, null),
        JsonValueKind.Array => new TypedValue("array", e.GetRawText(), null, null),
        _ => new TypedValue("null", null, null, null),
    };

    private static decimal? ParseNumber(string text) =>
        decimal.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out var n) ? Fit(n) : null;

    private static decimal? Fit(decimal n) => Math.Abs(n) > NumberLimit ? null : Math.Round(n, 12);
}
