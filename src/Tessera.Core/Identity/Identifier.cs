namespace Tessera.Core.Identity;

/// <summary>A typed, normalised identifier: <c>email:ann@example.com</c>, <c>phone:+14155550100</c>, <c>user_id:42</c>.</summary>
public readonly record struct Identifier(string Type, string Value)
{
    public override string ToString() => $"{Type}:{Value}";

    /// <summary>Parses <c>TYPE:VALUE</c> (the value may itself contain colons).</summary>
    public static bool TryParse(string? text, out Identifier identifier)
    {
        var colon = text?.IndexOf(':', StringComparison.Ordinal) ?? -1;
        if (colon <= 0 || colon == text!.Length - 1)
        {
            identifier = default;
            return false;
        }

        identifier = new Identifier(text[..colon], text[(colon + 1)..]);
        return true;
    }
}
