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
        JsonValueKind.String => OfString(e),
        JsonValueKind.Number => new TypedValue("number", e.GetRawText(), NumberOf(e), null),
        JsonValueKind.True or JsonValueKind.False => new TypedValue("boolean", e.GetRawText(), null, null),
        JsonValueKind.Object => new TypedValue("object", e.GetRawText(), null, null),
        JsonValueKind.Array => new TypedValue("array", e.GetRawText(), null, null),
        _ => new TypedValue("null", null, null, null),
    };

    private static TypedValue OfString(JsonElement e)
    {
        var text = e.GetString()!;
        return new TypedValue("string", text, NumberOf(text), e.TryGetDateTimeOffset(out var at) ? at : null);
    }

    /// <summary>The number a string reads as (the number column of a string value), or null.</summary>
    private static decimal? NumberOf(string text) =>
        decimal.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out var n) ? Fit(n) : null;

    /// <inheritdoc cref="NumberOf(string)"/>
    public static decimal? NumberOf(ReadOnlySpan<byte> utf8) =>
        decimal.TryParse(utf8, NumberStyles.Float, CultureInfo.InvariantCulture, out var n) ? Fit(n) : null;

    /// <summary>The number column of a JSON number, or null when it does not fit.</summary>
    public static decimal? NumberOf(JsonElement number) => number.TryGetDecimal(out var n) ? Fit(n) : null;

    private static decimal? Fit(decimal n) => Math.Abs(n) > NumberLimit ? null : Math.Round(n, 12);
}
