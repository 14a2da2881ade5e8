namespace Tessera.Core.Collection;

/// <summary>The six call types of Segment's spec.</summary>
public enum MessageType
{
    Identify,
    Track,
    Page,
    Screen,
    Group,
    Alias,
}

public static class MessageTypes
{
    /// <summary>The spec's lower-case name, as it appears in a message's <c>type</c> field.</summary>
    public static string Name(this MessageType type) => type switch
    {
        MessageType.Identify => "identify",
        MessageType.Track => "track",
        MessageType.Page => "page",
        MessageType.Screen => "screen",
        MessageType.Group => "group",
        MessageType.Alias => "alias",
        _ => throw new ArgumentOutOfRangeException(nameof(type)),
    };

    /// <summary>The type a message's <c>type</c> field names (a JSON string, compared as UTF-8: nothing decoded).</summary>
    public static bool TryParse(System.Text.Json.JsonElement name, out MessageType type)
    {
        type = default;
        if (name.ValueKind != System.Text.Json.JsonValueKind.String) { return false; }
        foreach (var (utf8, candidate) in Utf8Names)
        {
            if (name.ValueEquals(utf8))
            {
                type = candidate;
                return true;
            }
        }

        return false;
    }

    private static readonly (byte[] Name, MessageType Type)[] Utf8Names =
        [.. Enum.GetValues<MessageType>().Select(t => (System.Text.Encoding.UTF8.GetBytes(t.Name()), t))];

    public static bool TryParse(string? name, out MessageType type)
    {
        switch (name)
        {
            case "identify": type = MessageType.Identify; return true;
            case "track": type = MessageType.Track; return true;
            case "page": type = MessageType.Page; return true;
            case "screen": type = MessageType.Screen; return true;
            case "group": type = MessageType.Group; return true;
            case "alias": type = MessageType.Alias; return true;
            default: type = default; return false;
        }
    }
}
