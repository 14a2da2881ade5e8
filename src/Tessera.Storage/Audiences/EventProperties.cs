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

    /// <summary>Beyond this many event names, property names are no longer cached per event name.</summary>
    private const int MaxCachedEvents = 1024;

    // Per thread: the property names last seen for each event name, in order. Events of one name mostly carry the same
    // members, so their names are compared with the cached strings (no allocation) instead of decoded again.
    [ThreadStatic]
    private static Dictionary<string, string[]>? _namesByEvent;

    /// <summary>
    /// The present (not null) top-level members of the message's <c>properties</c>, each name once, each with the value
    /// <c>PropertyFilter.TryRead</c> gives for that name (so a repeated key reads as it does in memory). Empty when the
    /// message has no properties object or its event no name.
    /// </summary>
    public static (string Name, TypedValue Value)[] Of(CollectedEvent e)
    {
        if (e.Event is null || !e.Raw.Contains("\"properties\"") && !e.Raw.Contains("\\")) { return []; }
        using var document = e.Raw.Parse();
        return Rows(e.Event, document.RootElement);
    }

    /// <summary>
    /// <see cref="Of(CollectedEvent)"/> from the parsed message. Runs once per stored event, on the committer's thread:
    /// sized exactly and without a set, as the list, the set and a name string per property were 29 % of what the
    /// server allocated at 10,000 events/s (docs/benchmarks.md).
    /// </summary>
    private static (string Name, TypedValue Value)[] Rows(string eventName, JsonElement message)
    {
        if (message.ValueKind != JsonValueKind.Object
            || !message.TryGetProperty("properties"u8, out var properties)
            || properties.ValueKind != JsonValueKind.Object)
        {
            return [];
        }

        var names = Names(eventName, properties);
        if (names.Length == 0) { return []; }
        var repeated = HasRepeats(names);
        var rows = new (string Name, TypedValue Value)[names.Length];
        var count = 0;
        var index = 0;
        foreach (var member in properties.EnumerateObject())
        {
            var name = names[index++];
            var value = member.Value;
            if (repeated)
            {
                // The first occurrence places the name; its value is the one a lookup finds (the last), as in memory.
                if (Array.IndexOf(names, name) != index - 1 || !properties.TryGetProperty(name, out value)) { continue; }
            }

            if (value.ValueKind == JsonValueKind.Null) { continue; }
            rows[count++] = (name, TypedValue.Of(value));
        }

        return count == rows.Length ? rows : rows[..count];
    }

    /// <summary>The member names in order, reusing the strings cached for this event name where the members match.</summary>
    private static string[] Names(string eventName, JsonElement properties)
    {
        var cache = _namesByEvent ??= new Dictionary<string, string[]>(StringComparer.Ordinal);
        var cached = cache.GetValueOrDefault(eventName);
        var length = 0;
        var same = cached is not null;
        foreach (var member in properties.EnumerateObject())
        {
            same = same && length < cached!.Length && member.NameEquals(cached[length]);
            length++;
        }

        if (same && length == cached!.Length) { return cached; }
        var names = new string[length];
        var i = 0;
        foreach (var member in properties.EnumerateObject())
        {
            names[i] = cached is not null && i < cached.Length && member.NameEquals(cached[i]) ? cached[i] : member.Name;
            i++;
        }

        if (cached is not null || cache.Count < MaxCachedEvents) { cache[eventName] = names; }
        return names;
    }

    private static bool HasRepeats(string[] names)
    {
        if (names.Length > 32) { return new HashSet<string>(names, StringComparer.Ordinal).Count < names.Length; }
        for (var i = 1; i < names.Length; i++)
        {
            for (var j = 0; j < i; j++)
            {
                if (string.Equals(names[i], names[j], StringComparison.Ordinal)) { return true; }
            }
        }

        return false;
    }
}
