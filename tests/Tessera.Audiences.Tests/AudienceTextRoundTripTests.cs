using System.Globalization;
using System.Text;
using System.Text.RegularExpressions;
using Tessera.Core.Audiences;
using static Tessera.Audiences.Tests.Definitions;

namespace Tessera.Audiences.Tests;

/// <summary>
/// Properties over thousands of seeded random definitions and texts: Parse(Format(c)) is c, Format(Parse(t)) is
/// stable, loosely written text means the same, and no input makes the parser throw.
/// </summary>
public sealed partial class AudienceTextRoundTripTests
{
    private const int Cases = 4000;

    private static readonly string[] Keywords =
    [
        "and", "or", "not", "all", "any", "trait", "identifier", "computed", "event", "count", "sum", "of", "sequence",
        "first", "in", "segment", "where", "within", "from", "to", "contains", "starts", "ends", "with", "exists",
        "true", "false", "null",
    ];

    [Fact]
    public void every_random_definition_comes_back_from_its_text_unchanged()
    {
        for (var seed = 0; seed < Cases; seed++)
        {
            var condition = new RandomDefinitions(seed).Condition();
            var json = Canonical(condition);

            // The generator makes valid definitions only: the JSON form must take its own output back as it is.
            var fromJson = AudienceDefinition.Parse(json, out var jsonErrors);
            Check(fromJson is not null, seed, json, string.Join("\n", jsonErrors));
            Check(json == Canonical(fromJson!), seed, json, Canonical(fromJson!));

            var text = AudienceText.Format(condition);
            var parsed = AudienceText.Parse(text, out var errors);
            Check(parsed is not null, seed, text, string.Join("\n", errors));
            Check(json == Canonical(parsed!), seed, text, $"{json}\n became\n{Canonical(parsed!)}");
            Check(text == AudienceText.Format(parsed!), seed, text, AudienceText.Format(parsed!));
        }
    }

    [Fact]
    public void text_written_loosely_means_the_same_as_its_canonical_form()
    {
        for (var seed = 0; seed < Cases; seed++)
        {
            var condition = new RandomDefinitions(seed).Condition();
            var text = AudienceText.Format(condition);
            var loose = Loosen(text, new Random(seed));
            var parsed = AudienceText.Parse(loose, out var errors);
            Check(parsed is not null, seed, loose, string.Join("\n", errors));
            Check(Canonical(condition) == Canonical(parsed!), seed, loose, Canonical(parsed!));
            Check(text == AudienceText.Format(parsed!), seed, loose, AudienceText.Format(parsed!));
        }
    }

    [Fact]
    public void edited_texts_never_make_the_parser_throw_and_whatever_parses_is_stable()
    {
        var parsedCount = 0;
        for (var seed = 0; seed < Cases; seed++)
        {
            var random = new Random(seed);
            var text = AudienceText.Format(new RandomDefinitions(seed).Condition(3));
            for (var edits = random.Next(1, 4); edits > 0; edits--) { text = Edit(text, random); }
            parsedCount += ParsesOrExplains(text, seed) ? 1 : 0;
        }

        // Many edits land inside strings or swap like for like; the stability half of the property must be exercised.
        Assert.True(parsedCount > Cases / 10, $"only {parsedCount} of {Cases} edited texts parsed");
    }

    [Fact]
    public void random_token_soup_never_makes_the_parser_throw()
    {
        string[] fragments =
        [
            .. Keywords, "plan", "x.y", "\"Order Completed\"", "\"\"", "\"a\\\"b\"", "\"2026-01-01\"", "\"\\uD800\"", "\"open",
            "42", "-1.5", "1e3", "30d", "15m", "0d", "01", "=", "!=", ">", ">=", "<", "<=", "(", ")", "[", "]", "{", "}", ",",
            ":", "@", "-", "\n", "😀",
        ];
        var parsedCount = 0;
        for (var seed = 0; seed < 3 * Cases; seed++)
        {
            var random = new Random(seed);
            var text = string.Join(" ", Enumerable.Range(0, random.Next(1, 16)).Select(_ => fragments[random.Next(fragments.Length)]));
            parsedCount += ParsesOrExplains(text, seed) ? 1 : 0;
        }

        Assert.True(parsedCount > 0, "no random token soup parsed, so only the error half was tested");
    }

    /// <summary>
    /// Parses without throwing; an error has a position inside the text and a message; a success formats to a text
    /// that parses to the same definition and formats the same again.
    /// </summary>
    private static bool ParsesOrExplains(string text, int seed)
    {
        AudienceCondition? parsed;
        IReadOnlyList<DefinitionError> errors;
        try
        {
            parsed = AudienceText.Parse(text, out errors);
        }
        catch (Exception e) when (e is not Xunit.Sdk.XunitException)
        {
            Assert.Fail($"seed {seed}: Parse threw on\n{text}\n{e}");
            throw;
        }

        if (parsed is null)
        {
            Check(errors.Count > 0, seed, text, "no condition and no error");
            var lines = text.Split('\n');
            foreach (var error in errors)
            {
                var match = PositionPattern().Match(error.Path);
                Check(match.Success && error.Message.Length > 0, seed, text, error.ToString());
                var line = int.Parse(match.Groups[1].Value, CultureInfo.InvariantCulture);
                var column = int.Parse(match.Groups[2].Value, CultureInfo.InvariantCulture);
                Check(line <= lines.Length && column <= lines[line - 1].EnumerateRunes().Count() + 1, seed, text, error.ToString());
            }

            return false;
        }

        Check(errors.Count == 0, seed, text, string.Join("\n", errors));
        var formatted = AudienceText.Format(parsed);
        var again = AudienceText.Parse(formatted, out var againErrors);
        Check(again is not null, seed, $"{text}\n formatted as\n{formatted}", string.Join("\n", againErrors));
        Check(Canonical(parsed) == Canonical(again!), seed, formatted, Canonical(again!));
        Check(formatted == AudienceText.Format(again!), seed, formatted, AudienceText.Format(again!));
        return true;
    }

    /// <summary>
    /// The same text as a person might type it: keywords in any case, any whitespace (line breaks too) where
    /// there was a space and around punctuation, characters in strings written as \u escapes, and / as \/.
    /// </summary>
    private static string Loosen(string text, Random random)
    {
        var loose = new StringBuilder();
        var i = 0;
        while (i < text.Length)
        {
            var c = text[i];
            if (c == '"')
            {
                loose.Append('"');
                for (i++; text[i] != '"'; i++)
                {
                    if (text[i] == '\\')
                    {
                        var length = text[i + 1] == 'u' ? 6 : 2;
                        loose.Append(text, i, length);
                        i += length - 1;
                    }
                    else if (text[i] == '/' && random.Next(2) == 0) { loose.Append("\\/"); }
                    else if (!char.IsSurrogate(text[i]) && random.Next(5) == 0) { loose.Append(CultureInfo.InvariantCulture, $"\\u{(int)text[i]:x4}"); }
                    else { loose.Append(text[i]); }
                }

                loose.Append('"');
                i++;
            }
            else if (char.IsAsciiLetter(c) || c == '_')
            {
                var start = i;
                while (i < text.Length && (char.IsAsciiLetterOrDigit(text[i]) || text[i] is '_' or '.')) { i++; }
                var word = text[start..i];
                loose.Append(Keywords.Contains(word) ? RandomCase(word, random) : word);
            }
            else if (c == ' ')
            {
                loose.Append(Whitespace(random, atLeastOne: true));
                i++;
            }
            else if (c is '(' or ')' or '[' or ']' or '{' or '}' or ',' or ':')
            {
                loose.Append(Whitespace(random, atLeastOne: false)).Append(c).Append(Whitespace(random, atLeastOne: false));
                i++;
            }
            else
            {
                loose.Append(c);
                i++;
            }
        }

        return Whitespace(random, atLeastOne: false) + loose + Whitespace(random, atLeastOne: false);
    }

    private static string RandomCase(string word, Random random) =>
        string.Concat(word.Select(ch => random.Next(2) == 0 ? char.ToUpperInvariant(ch) : ch));

    private static string Whitespace(Random random, bool atLeastOne)
    {
        string[] choices = [" ", "  ", "\n", "\t", "\r\n  "];
        return !atLeastOne && random.Next(2) == 0 ? "" : choices[random.Next(choices.Length)];
    }

    /// <summary>One small edit: delete, duplicate or replace a character, or swap two neighbours.</summary>
    private static string Edit(string text, Random random)
    {
        const string Pool = "\"\\()[]{},:=!<>-. 0123456789adehimnorstwxzé😀";
        if (text.Length < 2) { return text + Pool[random.Next(Pool.Length)]; }
        var at = random.Next(text.Length - 1);
        var replacement = Pool[random.Next(Pool.Length)].ToString();
        return random.Next(4) switch
        {
            0 => text.Remove(at, 1),
            1 => text.Insert(at, text[at].ToString()),
            2 => text.Remove(at, 1).Insert(at, replacement),
            _ => text[..at] + text[at + 1] + text[at] + text[(at + 2)..],
        };
    }

    private static void Check(bool condition, int seed, string subject, string detail)
    {
        if (!condition) { Assert.Fail($"seed {seed}:\n{subject}\n--\n{detail}"); }
    }

    [GeneratedRegex(@"^line (\d+), column (\d+)$")]
    private static partial Regex PositionPattern();
}
