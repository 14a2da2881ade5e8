using System.Runtime.InteropServices;
using System.Text;
using System.Text.Json;
using Tessera.Storage.Profiles;

namespace Tessera.Storage.Audiences;

/// <summary>One row of <c>event_properties</c>: the member's name as UTF-8 and its value typed (<see cref="Utf8TypedValue"/>).</summary>
internal readonly ref struct PropertyRow(ReadOnlySpan<byte> name, Utf8TypedValue value)
{
    public ReadOnlySpan<byte> Name { get; } = name;

    public Utf8TypedValue Value { get; } = value;
}

/// <summary>Takes one <see cref="PropertyRow"/>; its spans are valid only during the call.</summary>
internal delegate void PropertyRowWriter<in TState>(TState state, in PropertyRow row);

/// <summary>
/// The typed copy of events' top-level properties that audience conditions read instead of the message JSON
/// (<c>event_properties</c>: one row per event with a name and per member of its <c>properties</c> object, written in
/// the event's own transaction). A property path without a dot names such a member (<c>PropertyFilter.TryRead</c> reads
/// it under <c>properties</c>); longer paths and <c>context.</c>/<c>traits.</c> paths are still read from the JSON.
/// The values are typed by <see cref="Utf8TypedValue"/> (<see cref="TypedValue"/>'s rules), so SQL compares what C# compares.
/// </summary>
internal static class EventProperties
{
    /// <summary>The property path reads a top-level member of <c>properties</c>, which the table holds.</summary>
    public static bool Holds(string path) => path.Length > 0 && !path.Contains('.', StringComparison.Ordinal);

    /// <summary>Beyond this many members, repeated names are looked for with a set of strings (the slow path).</summary>
    private const int MaxPlainMembers = 32;

    /// <summary>
    /// Writes the present (not null) top-level members of the message's <c>properties</c>, each name once, each with the
    /// value <c>PropertyFilter.TryRead</c> gives for that name (so a repeated key reads as it does in memory); nothing
    /// when the message has no properties object or its event no name. Runs once per stored event (on the engine's thread
    /// when the events are packed, <c>PropertyPacker</c>; at open for a backfill), so the usual member (a name and a
    /// value without escapes) costs no allocation: its spans point into the parsed message. Strings decoded and encoded
    /// back, and an array of rows per event, were a fifth of what the server allocated flat out (docs/benchmarks.md).
    /// </summary>
    /// <returns>The number of rows written.</returns>
    /// <param name="named">Whether the event has a name (a track's): only those have rows.</param>
    /// <param name="raw">The message's JSON text, as UTF-8.</param>
    public static int Write<TState>(bool named, ReadOnlyMemory<byte> raw, TState state, PropertyRowWriter<TState> write)
    {
        if (!named || raw.Span.IndexOf("\"properties\""u8) < 0 && raw.Span.IndexOf((byte)'\\') < 0) { return 0; }
        using var document = JsonDocument.Parse(raw);
        return Write(named, document.RootElement, state, write);
    }

    /// <summary>The same rows from the message already parsed (the engine's document, while it holds it): no second parse.</summary>
    public static int Write<TState>(bool named, JsonElement message, TState state, PropertyRowWriter<TState> write)
    {
        if (!named
            || message.ValueKind != JsonValueKind.Object
            || !message.TryGetProperty("properties"u8, out var properties)
            || properties.ValueKind != JsonValueKind.Object)
        {
            return 0;
        }

        return IsPlain(properties) ? WritePlain(properties, state, write) : WriteRepeated(properties, state, write);
    }

    /// <summary>No member name has an escape and none repeats: each member is a row as it stands.</summary>
    private static bool IsPlain(JsonElement properties)
    {
        var count = 0;
        foreach (var member in properties.EnumerateObject())
        {
            if (++count > MaxPlainMembers) { return false; }
            var name = JsonMarshal.GetRawUtf8PropertyName(member);
            if (name.IndexOf((byte)'\\') >= 0) { return false; }
            var before = 0;
            foreach (var earlier in properties.EnumerateObject())
            {
                if (before++ == count - 1) { break; }
                if (name.SequenceEqual(JsonMarshal.GetRawUtf8PropertyName(earlier))) { return false; }
            }
        }

        return true;
    }

    private static int WritePlain<TState>(JsonElement properties, TState state, PropertyRowWriter<TState> write)
    {
        var rows = 0;
        foreach (var member in properties.EnumerateObject())
        {
            if (member.Value.ValueKind == JsonValueKind.Null) { continue; }
            WriteRow(JsonMarshal.GetRawUtf8PropertyName(member), member.Value, state, write);
            rows++;
        }

        return rows;
    }

    /// <summary>Names with escapes or repeats: names decoded, the first occurrence placing a name with the value a lookup finds (the last), as in memory.</summary>
    private static int WriteRepeated<TState>(JsonElement properties, TState state, PropertyRowWriter<TState> write)
    {
        var seen = new HashSet<string>(StringComparer.Ordinal);
        var rows = 0;
        foreach (var member in properties.EnumerateObject())
        {
            var name = member.Name;
            if (!seen.Add(name) || !properties.TryGetProperty(name, out var value) || value.ValueKind == JsonValueKind.Null) { continue; }
            WriteRow(Encoding.UTF8.GetBytes(name), value, state, write);
            rows++;
        }

        return rows;
    }

    private static void WriteRow<TState>(ReadOnlySpan<byte> name, JsonElement value, TState state, PropertyRowWriter<TState> write) =>
        write(state, new PropertyRow(name, Utf8TypedValue.Of(value)));
}
