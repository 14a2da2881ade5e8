using System.Text.Json;

namespace Tessera.Core.Activation;

/// <summary>
/// Consent as Segment's consent spec carries it: <c>context.consent.categoryPreferences</c>, an object of category →
/// true/false on any message. Categories compare case-insensitively (they are stored lower-cased).
/// </summary>
public static class Consent
{
    /// <summary>The text that must occur in a raw message for it to carry preferences (a cheap pre-filter for stores).</summary>
    public const string Marker = "categoryPreferences";

    /// <summary>The preferences <paramref name="message"/> states, lower-cased; empty when it states none.</summary>
    public static IReadOnlyList<(string Category, bool Granted)> Read(JsonElement message)
    {
        if (message.ValueKind != JsonValueKind.Object
            || !message.TryGetProperty("context"u8, out var context) || context.ValueKind != JsonValueKind.Object
            || !context.TryGetProperty("consent"u8, out var consent) || consent.ValueKind != JsonValueKind.Object
            || !consent.TryGetProperty("categoryPreferences"u8, out var preferences) || preferences.ValueKind != JsonValueKind.Object)
        {
            return [];
        }

        var list = new List<(string, bool)>();
        foreach (var p in preferences.EnumerateObject())
        {
            if (p.Value.ValueKind is JsonValueKind.True or JsonValueKind.False && p.Name.Length is > 0 and <= 100)
            {
                list.Add((Normalize(p.Name), p.Value.GetBoolean()));
            }
        }

        return list;
    }

    public static string Normalize(string category) => category.Trim().ToLowerInvariant();
}
