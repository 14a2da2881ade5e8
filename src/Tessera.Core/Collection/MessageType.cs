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
