using System.Text.Json;
using System.Text.RegularExpressions;

namespace Tessera.Core.Audiences;

/// <summary>
/// The readable text form of audience definitions, for the CLI and docs (grammar in docs/audiences.md):
/// <c>trait plan = "pro" and count(event "Order Completed" where revenue &gt; 50, within 30d) &gt;= 3</c>.
/// It says exactly what the JSON form says: <see cref="Parse"/> builds the JSON and validates it with
/// <see cref="AudienceDefinition"/>, so both forms accept the same definitions, and for every valid condition
/// <c>Parse(Format(c))</c> gives <c>c</c> back.
/// </summary>
public static partial class AudienceText
{
    /// <summary>Far above anything the text parser can build; <see cref="AudienceTextParser.MaxNesting"/> bounds the real depth.</summary>
    private static readonly JsonDocumentOptions DocumentOptions = new() { MaxDepth = 4 * AudienceTextParser.MaxNesting + AudienceDefinition.MaxJsonDepth + 16 };

    /// <summary>
    /// Parses a definition written in the text form. On any problem returns null and the problems: a syntax error
    /// stops at the first one, validation reports every one. Each error's <see cref="DefinitionError.Path"/> is a
    /// position, <c>line 1, column 37</c> (both from 1; columns count Unicode characters, so a tab or an emoji
    /// counts one), and its message says what was expected and what was found.
    /// </summary>
    public static AudienceCondition? Parse(string text, out IReadOnlyList<DefinitionError> errors)
    {
        ArgumentNullException.ThrowIfNull(text);
        ParsedDefinition parsed;
        try
        {
            parsed = AudienceTextParser.Parse(text);
        }
        catch (AudienceTextSyntaxException e)
        {
            errors = [new DefinitionError(Position(text, e.Offset), e.Message)];
            return null;
        }

        using var document = JsonDocument.Parse(parsed.Json.ToJsonString(), DocumentOptions);
        var condition = AudienceDefinition.Parse(document.RootElement, out var found);
        errors = [.. found.Select(e => new DefinitionError(Position(text, parsed.Locate(e.Path)), Describe(e)))];
        return condition;
    }

    /// <summary>
    /// Writes <paramref name="condition"/> in its canonical text form. Parsing it gives an equal definition (the same
    /// canonical JSON, <see cref="AudienceDefinition.ToJson"/>), and formatting that again gives the same text.
    /// </summary>
    public static string Format(AudienceCondition condition)
    {
        ArgumentNullException.ThrowIfNull(condition);
        return AudienceTextFormatter.Format(condition);
    }

    /// <summary><c>line L, column C</c> of a UTF-16 offset in <paramref name="text"/>, both counted from 1.</summary>
    internal static string Position(string text, int offset)
    {
        var line = 1;
        var column = 1;
        for (var i = 0; i < offset && i < text.Length; i++)
        {
            if (text[i] == '\n') { line++; column = 1; }
            else if (!(char.IsLowSurrogate(text[i]) && i > 0 && char.IsHighSurrogate(text[i - 1]))) { column++; }
        }

        return $"line {line}, column {column}";
    }

    /// <summary>
    /// A validation error in the text's words. The JSON validation's messages follow their path
    /// (<c>within: cannot be combined with 'from'/'to'</c>); with a position instead of a path they need a subject,
    /// and operators are named as the text writes them.
    /// </summary>
    private static string Describe(DefinitionError error)
    {
        var message = JsonOperator().Replace(error.Message, m => $"'{AudienceTextFormatter.OperatorText(m.Groups[1].Value)}'")
            .Replace("must be an array of at least two steps", "must have at least two steps", StringComparison.Ordinal);
        if (!Predicate().IsMatch(message)) { return message; }
        var field = error.Path.Split('.')[^1];
        var subject = field switch
        {
            "trait" => "the trait name",
            "identifier" => "the identifier type",
            "computed" => "the computed trait name",
            "event" => "the event name",
            "property" => "the property name",
            "segment" => "the audience id",
            "sequence" => "the sequence",
            "within" or "from" or "to" => $"'{field}'",
            "value" => "the number",
            "op" => "the operator",
            _ => "the condition",
        };
        return $"{subject} {message}";
    }

    [GeneratedRegex("op '([a-z_]+)'")]
    private static partial Regex JsonOperator();

    [GeneratedRegex("^(is|must|has|nests|cannot|holds) ")]
    private static partial Regex Predicate();
}
