using System.Text.Json;
using System.Text.Json.Nodes;

namespace Tessera.Core.Profiles;

/// <summary>
/// Trait values as the engine holds them: strings and booleans as plain values, numbers, objects and arrays parsed from
/// their JSON. <see cref="JsonNode.Parse(string, JsonNodeOptions?, JsonDocumentOptions)"/> keeps even a short string on
/// a <see cref="JsonDocument"/> of its own (the node, the document and its two arrays, about 250 bytes), and the engine
/// holds a value per trait per profile: millions at a million profiles (docs/benchmarks.md, "What the engine holds").
/// </summary>
public static class TraitJson
{
    public static JsonNode? From(JsonElement value) => value.ValueKind switch
    {
        JsonValueKind.String => JsonValue.Create(value.GetString()!),
        JsonValueKind.True => JsonValue.Create(true),
        JsonValueKind.False => JsonValue.Create(false),
        JsonValueKind.Null or JsonValueKind.Undefined => null,
        _ => JsonNode.Parse(value.GetRawText()),
    };

    /// <summary>
    /// A stored value's JSON text, as <see cref="From"/> holds it, parsed once: a string, boolean or null through a
    /// document that is let go, anything else straight into its node (the engine reads every trait at start-up).
    /// </summary>
    public static JsonNode? Parse(string json)
    {
        var text = json.AsSpan().TrimStart();
        if (text.IsEmpty || text[0] is not ('"' or 't' or 'f' or 'n')) { return JsonNode.Parse(json); }
        using var document = JsonDocument.Parse(json);
        return From(document.RootElement);
    }
}
