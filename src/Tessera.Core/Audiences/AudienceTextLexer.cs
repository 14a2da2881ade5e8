using System.Globalization;
using System.Text;

namespace Tessera.Core.Audiences;

internal enum TokenKind
{
    End,

    /// <summary>A bare word: a keyword or a name such as <c>plan</c> or <c>context.campaign.source</c>.</summary>
    Name,

    /// <summary>A double-quoted string; <see cref="Token.Value"/> holds it unescaped.</summary>
    String,

    /// <summary>A number in JSON's syntax, kept as written (<c>-1.5e3</c>).</summary>
    Number,

    /// <summary>Digits run into letters, such as <c>30d</c>: a duration, or a mistake where a number was meant.</summary>
    Quantity,

    Symbol,

    /// <summary>Text that is no token; <see cref="Token.Value"/> says why. The lexer stops after it.</summary>
    Error,
}

/// <param name="Offset">Where the token starts, in UTF-16 code units from the start of the text.</param>
/// <param name="Text">The token as written.</param>
/// <param name="Value">A string's unescaped value, or an error token's message.</param>
internal readonly record struct Token(TokenKind Kind, int Offset, string Text, string? Value = null)
{
    /// <summary>Keywords are case-insensitive.</summary>
    public bool Is(string keyword) => Kind == TokenKind.Name && Text.Equals(keyword, StringComparison.OrdinalIgnoreCase);

    public bool IsSymbol(string symbol) => Kind == TokenKind.Symbol && Text == symbol;

    /// <summary>Whether this token can be a name: a quoted string, or a bare word that is not a keyword.</summary>
    public bool IsName => Kind == TokenKind.String || (Kind == TokenKind.Name && !AudienceTextLexer.IsKeyword(Text));
}

/// <summary>Splits the text form of a definition into tokens (the grammar is in docs/audiences.md).</summary>
internal static class AudienceTextLexer
{
    /// <summary>Every word the grammar uses, reserved in every case so that a bare name can never be read as one.</summary>
    public static readonly IReadOnlySet<string> Keywords = new HashSet<string>(
        [
            "and", "or", "not", "all", "any", "trait", "identifier", "computed", "event", "count", "sum", "of",
            "sequence", "first", "in", "segment", "where", "within", "from", "to", "contains", "starts", "ends",
            "with", "exists", "true", "false", "null",
        ],
        StringComparer.OrdinalIgnoreCase);

    private static readonly string[] Symbols = ["!=", ">=", "<=", "=", ">", "<", "(", ")", "[", "]", "{", "}", ",", ":"];

    public static bool IsKeyword(string word) => Keywords.Contains(word);

    /// <summary>
    /// Whether <paramref name="name"/> can be written without quotes: ASCII letters, digits and underscores, not
    /// starting with a digit, in parts joined by single dots, and not a keyword. Everything else is quoted.
    /// </summary>
    public static bool IsBareName(string name) => !IsKeyword(name) && ScanName(name, 0) == name.Length && name.Length > 0;

    public static List<Token> Tokenize(string text)
    {
        var tokens = new List<Token>();
        var i = 0;
        while (true)
        {
            while (i < text.Length && char.IsWhiteSpace(text[i])) { i++; }
            if (i == text.Length)
            {
                tokens.Add(new Token(TokenKind.End, i, ""));
                return tokens;
            }

            var token = Next(text, i);
            tokens.Add(token);
            if (token.Kind == TokenKind.Error)
            {
                tokens.Add(new Token(TokenKind.End, text.Length, ""));
                return tokens;
            }

            i += token.Text.Length;
        }
    }

    private static Token Next(string text, int start)
    {
        var c = text[start];
        if (IsNameStart(c)) { return new Token(TokenKind.Name, start, text[start..ScanName(text, start)]); }
        if (c == '"') { return ReadString(text, start); }
        if (char.IsAsciiDigit(c) || (c == '-' && start + 1 < text.Length && char.IsAsciiDigit(text[start + 1]))) { return ReadNumber(text, start); }
        foreach (var symbol in Symbols)
        {
            if (string.CompareOrdinal(text, start, symbol, 0, symbol.Length) == 0) { return new Token(TokenKind.Symbol, start, symbol); }
        }

        var shown = char.IsSurrogatePair(text, start) ? text.Substring(start, 2) : Show(c);
        return new Token(TokenKind.Error, start, shown, $"unexpected character '{shown}'");
    }

    /// <summary>The end of the bare name starting at <paramref name="start"/> (itself when there is none).</summary>
    private static int ScanName(string text, int start)
    {
        var i = start;
        if (i >= text.Length || !IsNameStart(text[i])) { return start; }
        while (true)
        {
            while (i < text.Length && IsNamePart(text[i])) { i++; }
            if (i + 1 < text.Length && text[i] == '.' && IsNameStart(text[i + 1])) { i++; }
            else { return i; }
        }
    }

    private static bool IsNameStart(char c) => char.IsAsciiLetter(c) || c == '_';

    private static bool IsNamePart(char c) => char.IsAsciiLetterOrDigit(c) || c == '_';

    /// <summary>JSON's number syntax; digits followed by letters (<c>30d</c>, <c>01</c>) make a <see cref="TokenKind.Quantity"/>.</summary>
    private static Token ReadNumber(string text, int start)
    {
        var i = start;
        if (text[i] == '-') { i++; }
        if (text[i] == '0') { i++; }
        else { while (i < text.Length && char.IsAsciiDigit(text[i])) { i++; } }

        if (i + 1 < text.Length && text[i] == '.' && char.IsAsciiDigit(text[i + 1]))
        {
            i++;
            while (i < text.Length && char.IsAsciiDigit(text[i])) { i++; }
        }

        if (i < text.Length && text[i] is 'e' or 'E')
        {
            var j = i + 1;
            if (j < text.Length && text[j] is '+' or '-') { j++; }
            if (j < text.Length && char.IsAsciiDigit(text[j]))
            {
                i = j;
                while (i < text.Length && char.IsAsciiDigit(text[i])) { i++; }
            }
        }

        if (i < text.Length && IsNamePart(text[i]))
        {
            while (i < text.Length && IsNamePart(text[i])) { i++; }
            return new Token(TokenKind.Quantity, start, text[start..i]);
        }

        return new Token(TokenKind.Number, start, text[start..i]);
    }

    /// <summary>JSON's string syntax: <c>\" \\ \/ \b \f \n \r \t \uXXXX</c>, no raw control characters, whole surrogate pairs.</summary>
    private static Token ReadString(string text, int start)
    {
        var value = new StringBuilder();
        var i = start + 1;
        while (i < text.Length && text[i] != '"')
        {
            var c = text[i];
            if (c < ' ')
            {
                return new Token(TokenKind.Error, i, Show(c), $"a string cannot hold the control character '{Show(c)}' as it is: write it as an escape such as \\n, \\t or \\u0001");
            }

            if (c != '\\')
            {
                value.Append(c);
                i++;
                continue;
            }

            if (i + 1 >= text.Length) { break; }
            var escape = text[i + 1];
            switch (escape)
            {
                case '"': value.Append('"'); break;
                case '\\': value.Append('\\'); break;
                case '/': value.Append('/'); break;
                case 'b': value.Append('\b'); break;
                case 'f': value.Append('\f'); break;
                case 'n': value.Append('\n'); break;
                case 'r': value.Append('\r'); break;
                case 't': value.Append('\t'); break;
                case 'u' when i + 6 <= text.Length && ushort.TryParse(text.AsSpan(i + 2, 4), NumberStyles.AllowHexSpecifier, CultureInfo.InvariantCulture, out var code):
                    value.Append((char)code);
                    i += 4;
                    break;
                default:
                    var bad = text.Substring(i, Math.Min(escape == 'u' ? 6 : 2, text.Length - i));
                    return new Token(TokenKind.Error, i, bad, $"'{bad}' is not an escape: use \\\", \\\\, \\/, \\b, \\f, \\n, \\r, \\t or \\u followed by four hex digits");
            }

            i += 2;
        }

        if (i >= text.Length)
        {
            return new Token(TokenKind.Error, start, "\"", "this string is never closed: a '\"' is missing");
        }

        var decoded = value.ToString();
        for (var k = 0; k < decoded.Length; k++)
        {
            if (char.IsHighSurrogate(decoded[k]) && k + 1 < decoded.Length && char.IsLowSurrogate(decoded[k + 1])) { k++; }
            else if (char.IsSurrogate(decoded[k]))
            {
                return new Token(TokenKind.Error, start, "\"", $"this string holds an unpaired surrogate (\\u{(int)decoded[k]:X4}), which is not valid Unicode text");
            }
        }

        return new Token(TokenKind.String, start, text[start..(i + 1)], decoded);
    }

    private static string Show(char c) => char.IsControl(c) || char.IsWhiteSpace(c) ? $"\\u{(int)c:X4}" : c.ToString();
}
