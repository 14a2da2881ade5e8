using System.Globalization;
using System.Runtime.InteropServices;
using System.Text;
using System.Text.Json;

namespace Tessera.Storage.Profiles;

/// <summary>
/// A present JSON value as typed columns, worked out in C# with the exact rules of <c>PropertyFilter.Test</c>: the JSON
/// kind; the string's value or, for other kinds, the JSON text as written (what <c>PropertyFilter</c> compares for
/// contains/starts_with/ends_with and objects); the number (a JSON number, or a string that reads as one); the instant (a
/// string that is an ISO 8601 date). Trait and event property conditions then compare columns instead of parsing JSON.
/// The rules live in <see cref="Utf8TypedValue.Of"/>; this is its form with strings.
/// </summary>
internal readonly record struct TypedValue(string Kind, string? Text, decimal? Number, DateTimeOffset? Instant)
{
    public static TypedValue Of(JsonElement e)
    {
        var typed = Utf8TypedValue.Of(e);
        return new TypedValue(typed.Kind, typed.Kind == Utf8TypedValue.NullKind ? null : Encoding.UTF8.GetString(typed.Text), typed.Number, typed.Instant);
    }
}

/// <summary>
/// <see cref="TypedValue"/>'s columns with the text as UTF-8: a span over the parsed JSON's own bytes wherever the value
/// has no escapes, so every event property is typed without decoding it to a string (valid while the
/// document is).
/// </summary>
internal readonly ref struct Utf8TypedValue(string kind, ReadOnlySpan<byte> text, decimal? number, DateTimeOffset? instant)
{
    public const string NullKind = "null";

    /// <summary>The widest number both stores keep exactly (DuckDB's DECIMAL(38,12)); a larger one is kept without a number.</summary>
    private const decimal NumberLimit = 99_999_999_999_999_999_999_999_999m;

    public string Kind { get; } = kind;

    /// <summary>The kind as UTF-8 (constant data: nothing to encode per value).</summary>
    public ReadOnlySpan<byte> KindUtf8 => Kind switch
    {
        "string" => "string"u8,
        "number" => "number"u8,
        "boolean" => "boolean"u8,
        "object" => "object"u8,
        "array" => "array"u8,
        _ => "null"u8,
    };

    /// <summary>The string's value or the JSON text as written; empty for null.</summary>
    public ReadOnlySpan<byte> Text { get; } = text;

    public decimal? Number { get; } = number;

    public DateTimeOffset? Instant { get; } = instant;

    public static Utf8TypedValue Of(JsonElement e)
    {
        switch (e.ValueKind)
        {
            case JsonValueKind.String:
                var text = JsonMarshal.GetRawUtf8Value(e)[1..^1];
                if (text.IndexOf((byte)'\\') >= 0) { text = Encoding.UTF8.GetBytes(e.GetString()!); }
                return new("string", text, NumberOf(text), e.TryGetDateTimeOffset(out var at) ? at : null);
            case JsonValueKind.Number:
                return new("number", JsonMarshal.GetRawUtf8Value(e), e.TryGetDecimal(out var n) ? Fit(n) : null, null);
            case JsonValueKind.True or JsonValueKind.False:
                return new("boolean", JsonMarshal.GetRawUtf8Value(e), null, null);
            case JsonValueKind.Object:
                return new("object", JsonMarshal.GetRawUtf8Value(e), null, null);
            case JsonValueKind.Array:
                return new("array", JsonMarshal.GetRawUtf8Value(e), null, null);
            default:
                return new(NullKind, [], null, null);
        }
    }

    /// <summary>The number a string reads as (the number column of a string value), or null.</summary>
    private static decimal? NumberOf(ReadOnlySpan<byte> utf8) =>
        decimal.TryParse(utf8, NumberStyles.Float, CultureInfo.InvariantCulture, out var n) ? Fit(n) : null;

    private static decimal? Fit(decimal n) => Math.Abs(n) > NumberLimit ? null : Math.Round(n, 12);
}
