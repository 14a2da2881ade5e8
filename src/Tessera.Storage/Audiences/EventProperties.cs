using System.Text.Json;
using Tessera.Core.Collection;
using Tessera.Storage.Profiles;

namespace Tessera.Storage.Audiences;

/// <summary>
/// The typed copy of events' top-level properties that audience conditions read instead of the message JSON
/// (<c>event_properties</c>: one row per event with a name and per member of its <c>properties</c> object, written in
/// the event's own transaction). A property path without a dot names such a member (<c>PropertyFilter.TryRead</c> reads
/// it under <c>properties</c>); longer paths and <c>context.</c>/<c>traits.</c> paths are still read from the JSON.
/// The values are typed here by <see cref="TypedValue"/>, so SQL compares what C# compares.
/// </summary>
internal static class EventProperties
{
    /// <summary>The property path reads a top-level member of <c>properties</c>, which the table holds.</summary>
    public static bool Holds(string path) => path.Length > 0 && !path.Contains('.', StringComparison.Ordinal);

    /// <summary>
    /// The present (not null) top-level members of the message's <c>properties</c>, each name once, each with the value
    /// <c>PropertyFilter.TryRead</c> gives for that name (so a repeated key reads as it does in memory). Empty when the
    /// message has no properties object or its event no name.
    /// </summary>
    public static List<(string Name, TypedValue Value)> Of(CollectedEvent e)
    {
        if (e.Event is null || !e.Raw.Contains("\"properties\"", StringComparison.Ordinal) && !e.Raw.Contains('\\', StringComparison.Ordinal)) { return []; }
        using var document = JsonDocument.Parse(e.Raw);
        return Of(e.Event, document.RootElement);
    }

    /// <summary><see cref="Of(CollectedEvent)"/> from the message already parsed: <paramref name="message"/> is its root, <paramref name="eventName"/> its event.</summary>
    public static List<(string Name, TypedValue Value)> Of(string? eventName, JsonElement message)
    {
        var rows = new List<(string, TypedValue)>();
        if (eventName is null
            || message.ValueKind != JsonValueKind.Object
            || !message.TryGetProperty("properties"u8, out var properties)
            || properties.ValueKind != JsonValueKind.Object)
        {
            return rows;
        }

        HashSet<string>? seen = null;
        foreach (var member in properties.EnumerateObject())
        {
            if (!(seen ??= new HashSet<string>(StringComparer.Ordinal)).Add(member.Name)) { continue; }
            if (!properties.TryGetProperty(member.Name, out var value) || value.ValueKind == JsonValueKind.Null) { continue; }
            rows.Add((member.Name, TypedValue.Of(value)));
        }

        return rows;
    }
}
