using System.Globalization;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Tessera.Core.Conditions;

namespace Tessera.Core.Audiences;

/// <summary>
/// Writes a definition in the text form, canonically: keywords in lower case, one space between tokens, names
/// quoted only when <see cref="AudienceTextLexer.IsBareName"/> says so, and parentheses wherever an
/// <c>and</c> or <c>or</c> of several conditions sits inside another condition, so that parsing the text gives the
/// same tree back.
/// </summary>
internal static class AudienceTextFormatter
{
    public static string Format(AudienceCondition condition)
    {
        var text = new StringBuilder();
        Write(text, condition);
        return text.ToString();
    }

    public static string OperatorText(string op) => op switch
    {
        "eq" => "=",
        "neq" => "!=",
        "gt" => ">",
        "gte" => ">=",
        "lt" => "<",
        "lte" => "<=",
        "starts_with" => "starts with",
        "ends_with" => "ends with",
        "not_in" => "not in",
        "not_exists" => "not exists",
        _ => op,
    };

    private static void Write(StringBuilder text, AudienceCondition condition)
    {
        switch (condition)
        {
            case AllOf { Conditions.Count: 1 } all: Call(text, "all", all.Conditions[0]); break;
            case AnyOf { Conditions.Count: 1 } any: Call(text, "any", any.Conditions[0]); break;
            case AllOf all: Join(text, " and ", all.Conditions); break;
            case AnyOf any: Join(text, " or ", any.Conditions); break;
            case NotCondition not:
                text.Append("not ");
                Operand(text, not.Condition);
                break;
            case TraitCondition t: Comparison(text, "trait", t.Trait, t.Op, t.Value); break;
            case IdentifierCondition i: Comparison(text, "identifier", i.Type, i.Op, i.Value); break;
            case ComputedCondition c: Comparison(text, "computed", c.Name, c.Op, c.Value); break;
            case EventCondition e: Event(text, e); break;
            case SequenceCondition s: Sequence(text, s); break;
            case SegmentReference r:
                text.Append("in segment ");
                String(text, r.SegmentId);
                break;
            default: throw new ArgumentOutOfRangeException(nameof(condition), condition.GetType().Name, "unknown condition kind");
        }
    }

    private static void Call(StringBuilder text, string function, AudienceCondition only)
    {
        text.Append(function).Append('(');
        Write(text, only);
        text.Append(')');
    }

    private static void Join(StringBuilder text, string separator, IReadOnlyList<AudienceCondition> conditions)
    {
        for (var i = 0; i < conditions.Count; i++)
        {
            if (i > 0) { text.Append(separator); }
            Operand(text, conditions[i]);
        }
    }

    /// <summary>
    /// A condition inside and, or or not. An and/or of several goes in parentheses: required inside an and, an or
    /// or a not of the same or weaker binding, and kept for an and inside an or so no reader needs the precedence.
    /// </summary>
    private static void Operand(StringBuilder text, AudienceCondition condition)
    {
        var group = condition is AllOf { Conditions.Count: > 1 } or AnyOf { Conditions.Count: > 1 };
        if (group) { text.Append('('); }
        Write(text, condition);
        if (group) { text.Append(')'); }
    }

    private static void Comparison(StringBuilder text, string kind, string name, string op, JsonElement? value)
    {
        text.Append(kind).Append(' ');
        Name(text, name);
        Filter(text, op, value);
    }

    private static void Filter(StringBuilder text, string op, JsonElement? value)
    {
        text.Append(' ').Append(OperatorText(op));
        if (value is { } v)
        {
            text.Append(' ');
            Value(text, v);
        }
    }

    private static void Event(StringBuilder text, EventCondition e)
    {
        var aggregate = e.Count is not null || e.Sum is not null;
        if (e.Sum is not null)
        {
            text.Append("sum(");
            Name(text, e.SumProperty ?? "");
            text.Append(" of ");
        }
        else if (e.Count is not null)
        {
            text.Append("count(");
        }

        EventBody(text, e.Event, e.Where);
        var window = text.Length;
        if (e.Window.Within is { } within) { text.Append(" within ").Append(AudienceDefinition.FormatDuration(within)); }
        if (e.Window.From is { } from) { text.Append(" from "); String(text, Date(from)); }
        if (e.Window.To is { } to) { text.Append(" to "); String(text, Date(to)); }
        if (!aggregate) { return; }

        // Inside count(...) and sum(...) the window follows a comma, as in count(event "X" where a > 1, within 30d).
        if (text.Length > window) { text.Insert(window, ','); }
        var measure = e.Sum ?? e.Count!;
        text.Append(") ").Append(OperatorText(measure.Op)).Append(' ').Append(JsonValue.Create(measure.Value).ToJsonString());
    }

    /// <summary>Midnight UTC as the date alone (<c>"2026-01-01"</c>, which parses back to it), other instants in full UTC.</summary>
    private static string Date(DateTimeOffset at) =>
        at.UtcTicks % TimeSpan.TicksPerDay == 0 ? at.UtcDateTime.ToString("yyyy-MM-dd", CultureInfo.InvariantCulture) : AudienceDefinition.FormatInstant(at);

    private static void EventBody(StringBuilder text, string name, IReadOnlyList<PropertyFilter> where)
    {
        text.Append("event ");
        Name(text, name);
        for (var i = 0; i < where.Count; i++)
        {
            text.Append(i == 0 ? " where " : " and ");
            Name(text, where[i].Property);
            Filter(text, where[i].Op, where[i].Value);
        }
    }

    private static void Sequence(StringBuilder text, SequenceCondition s)
    {
        text.Append("sequence(");
        foreach (var step in s.Steps)
        {
            if (step.First) { text.Append("first "); }
            EventBody(text, step.Event, step.Where);
            text.Append(", ");
        }

        text.Append("within ").Append(AudienceDefinition.FormatDuration(s.Within)).Append(')');
    }

    private static void Name(StringBuilder text, string name)
    {
        if (AudienceTextLexer.IsBareName(name)) { text.Append(name); }
        else { String(text, name); }
    }

    /// <summary>JSON values as JSON writes them, but with readable spacing and strings escaped by <see cref="String"/>.</summary>
    private static void Value(StringBuilder text, JsonElement value)
    {
        switch (value.ValueKind)
        {
            case JsonValueKind.String: String(text, value.GetString()!); break;
            case JsonValueKind.Array:
                text.Append('[');
                var first = true;
                foreach (var item in value.EnumerateArray())
                {
                    if (!first) { text.Append(", "); }
                    first = false;
                    Value(text, item);
                }

                text.Append(']');
                break;
            case JsonValueKind.Object:
                text.Append('{');
                var firstField = true;
                foreach (var field in value.EnumerateObject())
                {
                    if (!firstField) { text.Append(", "); }
                    firstField = false;
                    String(text, field.Name);
                    text.Append(": ");
                    Value(text, field.Value);
                }

                text.Append('}');
                break;
            default:
                text.Append(value.GetRawText()); // numbers as written (1.50 stays 1.50), true, false, null
                break;
        }
    }

    /// <summary>
    /// A double-quoted string. Printable characters stay as they are (so names in any script read naturally);
    /// quotes, backslashes, and characters that are invisible or ambiguous on screen (controls, format characters,
    /// line separators, spaces other than U+0020, unpaired surrogates) are escaped.
    /// </summary>
    private static void String(StringBuilder text, string value)
    {
        text.Append('"');
        for (var i = 0; i < value.Length; i++)
        {
            var c = value[i];
            switch (c)
            {
                case '"': text.Append("\\\""); continue;
                case '\\': text.Append("\\\\"); continue;
                case '\n': text.Append("\\n"); continue;
                case '\r': text.Append("\\r"); continue;
                case '\t': text.Append("\\t"); continue;
                case '\b': text.Append("\\b"); continue;
                case '\f': text.Append("\\f"); continue;
                default: break;
            }

            if (char.IsHighSurrogate(c) && i + 1 < value.Length && char.IsLowSurrogate(value[i + 1]))
            {
                text.Append(c).Append(value[++i]);
                continue;
            }

            var escape = char.GetUnicodeCategory(c) is UnicodeCategory.Control or UnicodeCategory.Format or UnicodeCategory.LineSeparator
                or UnicodeCategory.ParagraphSeparator or UnicodeCategory.Surrogate or UnicodeCategory.PrivateUse or UnicodeCategory.OtherNotAssigned
                || (c != ' ' && char.GetUnicodeCategory(c) == UnicodeCategory.SpaceSeparator);
            if (escape) { text.Append(CultureInfo.InvariantCulture, $"\\u{(int)c:X4}"); }
            else { text.Append(c); }
        }

        text.Append('"');
    }
}
