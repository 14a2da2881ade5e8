using System.Text.Json.Nodes;

namespace Tessera.Core.Audiences;

/// <summary>
/// A syntax error in the text form, at <see cref="Offset"/> (UTF-16 code units from the start). Thrown inside the
/// parser only; <see cref="AudienceText.Parse"/> turns it into a <see cref="DefinitionError"/>.
/// </summary>
internal sealed class AudienceTextSyntaxException(int offset, string message) : Exception(message)
{
    public int Offset { get; } = offset;
}

/// <summary>
/// Recursive descent over the text form (grammar in docs/audiences.md), building the definition's JSON form rather
/// than the model: <see cref="AudienceDefinition.Parse(System.Text.Json.JsonElement, out IReadOnlyList{DefinitionError})"/>
/// then validates it, so the text and JSON forms share every rule. Beside the JSON it records where in the text
/// each field came from, to point that validation's errors (paths such as <c>and[1].within</c>) back at the text.
/// </summary>
internal sealed class AudienceTextParser
{
    /// <summary>
    /// Deepest nesting of parentheses, <c>not</c>, <c>all(</c> and <c>any(</c>: twice what the JSON allows, so any
    /// valid definition fits while a hostile text cannot exhaust the stack. Between the two limits the JSON
    /// validation reports the depth, naming the node.
    /// </summary>
    public const int MaxNesting = 2 * AudienceDefinition.MaxDepth + 2;

    private const string Operators = "=, !=, >, >=, <, <=, contains, starts with, ends with, in, not in, exists, not exists";

    private readonly string _text;
    private readonly List<Token> _tokens;
    private readonly Dictionary<JsonNode, Dictionary<string, int>> _positions = new(ReferenceEqualityComparer.Instance);
    private int _next;

    private AudienceTextParser(string text)
    {
        _text = text;
        _tokens = AudienceTextLexer.Tokenize(text);
    }

    private readonly record struct Parsed(JsonObject Json, int Offset);

    private Token Current => _tokens[_next].Kind == TokenKind.Error ? throw LexError(_tokens[_next]) : _tokens[_next];

    /// <summary>Parses the whole text into the definition's JSON; throws <see cref="AudienceTextSyntaxException"/>.</summary>
    public static ParsedDefinition Parse(string text)
    {
        var parser = new AudienceTextParser(text);
        var root = parser.ParseOr(0);
        if (parser.Current.Kind != TokenKind.End) { throw parser.Expected("'and', 'or' or the end of the text", parser.Current); }
        return new ParsedDefinition(root.Json, root.Offset, parser._positions);
    }

    private Parsed ParseOr(int depth)
    {
        var first = ParseAnd(depth);
        if (!Current.Is("or")) { return first; }
        var items = new List<Parsed> { first };
        while (Accept("or")) { items.Add(ParseAnd(depth)); }
        return Group("or", items, first.Offset);
    }

    private Parsed ParseAnd(int depth)
    {
        var first = ParseUnary(depth);
        if (!Current.Is("and")) { return first; }
        var items = new List<Parsed> { first };
        while (Accept("and")) { items.Add(ParseUnary(depth)); }
        return Group("and", items, first.Offset);
    }

    private Parsed ParseUnary(int depth)
    {
        if (!Current.Is("not")) { return ParsePrimary(depth); }
        var not = Take();
        Nest(depth + 1, not);
        var inner = ParseUnary(depth + 1);
        var json = new JsonObject { ["not"] = inner.Json };
        Mark(json, "not", inner.Offset);
        return new Parsed(json, not.Offset);
    }

    private Parsed ParsePrimary(int depth)
    {
        var token = Current;
        if (token.IsSymbol("("))
        {
            Take();
            Nest(depth + 1, token);
            var inner = ParseOr(depth + 1);
            Expect(")", $"to close the '(' at {AudienceText.Position(_text, token.Offset)}");
            return inner;
        }

        if (token.Is("all") || token.Is("any"))
        {
            Take();
            Expect("(", $"after {token.Text}");
            Nest(depth + 1, token);
            var items = new List<Parsed>();
            do { items.Add(ParseOr(depth + 1)); }
            while (Accept(","));
            Expect(")", $"to close {token.Text}(...)");
            return Group(token.Is("all") ? "and" : "or", items, token.Offset);
        }

        if (token.Is("trait") || token.Is("identifier") || token.Is("computed"))
        {
            Take();
            var kind = token.Text.ToLowerInvariant();
            var what = kind switch { "trait" => "a trait name", "identifier" => "an identifier type", _ => "a computed trait name" };
            var json = new JsonObject();
            var name = Name(json, kind, what, $"after {token.Text}");
            Comparison(json, $"{token.Text} {name.Text}");
            return new Parsed(json, token.Offset);
        }

        if (token.Is("event"))
        {
            var json = EventBody("");
            Window(json);
            return new Parsed(json, token.Offset);
        }

        if (token.Is("count") || token.Is("sum")) { return Aggregate(); }
        if (token.Is("sequence")) { return Sequence(); }
        if (token.Is("in"))
        {
            Take();
            ExpectKeyword("segment", "after in");
            var id = Current;
            if (id.Kind != TokenKind.String) { throw Expected("the audience's id as a quoted string, such as \"seg_123\", after in segment", id); }
            Take();
            var json = new JsonObject { ["segment"] = id.Value };
            Mark(json, "segment", id.Offset);
            return new Parsed(json, token.Offset);
        }

        throw Expected("a condition (trait, identifier, computed, event, count, sum, sequence, in segment, not, all, any or '(')", token);
    }

    /// <summary><c>event NAME [where FILTERS]</c>, the part every event condition shares.</summary>
    private JsonObject EventBody(string where)
    {
        ExpectKeyword("event", where);
        var json = new JsonObject();
        var name = Name(json, "event", "an event name", "after event");
        if (Current.Is("where")) { Where(json, $"event {name.Text}"); }
        return json;
    }

    /// <summary><c>where FILTER {and FILTER}</c>: an <c>and</c> continues the filters when a name follows it, since no condition starts with one.</summary>
    private void Where(JsonObject json, string subject)
    {
        var where = Take();
        var filters = new JsonArray();
        json["where"] = filters;
        Mark(json, "where", where.Offset);
        while (true)
        {
            var filter = new JsonObject();
            var start = Current.Offset;
            var property = Name(filter, "property", "a property name", filters.Count == 0 ? $"after {subject} where" : "after and");
            Comparison(filter, property.Text);
            filters.Add(filter);
            Mark(filters, $"[{filters.Count - 1}]", start);
            if (!(Current.Is("and") && _tokens[_next + 1].IsName)) { break; }
            Take();
        }
    }

    /// <summary>Any of <c>within DURATION</c>, <c>from "DATE"</c>, <c>to "DATE"</c>, each at most once; which combine is the JSON validation's call.</summary>
    private void Window(JsonObject json)
    {
        while (Current.Is("within") || Current.Is("from") || Current.Is("to"))
        {
            var keyword = Take();
            var field = keyword.Text.ToLowerInvariant();
            if (json.ContainsKey(field)) { throw new AudienceTextSyntaxException(keyword.Offset, $"'{field}' is given twice for one event condition"); }
            var value = Current;
            if (field == "within")
            {
                if (value.Kind is not (TokenKind.Number or TokenKind.Quantity)) { throw Expected("a duration such as 15m, 12h, 30d or 2w after within", value); }
                json[field] = value.Text;
            }
            else
            {
                if (value.Kind != TokenKind.String) { throw Expected($"a date in quotes, such as \"2026-01-31\" or \"2026-01-31T12:00:00Z\", after {field}", value); }
                json[field] = value.Value;
            }

            Take();
            Mark(json, field, value.Offset);
        }
    }

    /// <summary><c>count(event ... [, WINDOW]) OP N</c> or <c>sum(PROPERTY of event ... [, WINDOW]) OP N</c>.</summary>
    private Parsed Aggregate()
    {
        var keyword = Take();
        var kind = keyword.Text.ToLowerInvariant();
        Expect("(", $"after {keyword.Text}");
        var measure = new JsonObject();
        string? property = null;
        if (kind == "sum")
        {
            property = Name(measure, "property", "the property to add up (sum(revenue of event ...))", "after sum(").Text;
            ExpectKeyword("of", $"after sum({property}");
        }

        var json = EventBody(property is null ? "after count(" : $"after sum({property} of");
        json[kind] = measure;
        Mark(json, kind, keyword.Offset);
        if (Accept(","))
        {
            if (!(Current.Is("within") || Current.Is("from") || Current.Is("to"))) { throw Expected("within, from or to after ','", Current); }
        }

        Window(json);
        Expect(")", $"to close {keyword.Text}(...)");
        var subject = kind == "sum" ? $"sum({property} of ...)" : "count(...)";
        var op = Current;
        var name = op.Kind == TokenKind.Symbol ? ValueOperator(op.Text) : null;
        if (name is null) { throw Expected($"a comparison (=, !=, >, >=, <, <=) after {subject}", op); }
        Take();
        measure["op"] = name;
        Mark(measure, "op", op.Offset);
        var number = Current;
        if (number.Kind != TokenKind.Number) { throw Expected($"a number after {subject} {op.Text}", number); }
        Take();
        measure["value"] = JsonNode.Parse(number.Text);
        Mark(measure, "value", number.Offset);
        return new Parsed(json, keyword.Offset);
    }

    /// <summary><c>sequence(STEP, STEP, ..., within DURATION)</c>; how many steps, and whether within is there, is the JSON validation's call.</summary>
    private Parsed Sequence()
    {
        var keyword = Take();
        Expect("(", "after sequence");
        var steps = new JsonArray();
        var json = new JsonObject { ["sequence"] = steps };
        Mark(json, "sequence", keyword.Offset);
        while (!Current.IsSymbol(")"))
        {
            if (Current.Is("within"))
            {
                Take();
                var duration = Current;
                if (duration.Kind is not (TokenKind.Number or TokenKind.Quantity)) { throw Expected("a duration such as 15m, 12h, 30d or 2w after within", duration); }
                Take();
                json["within"] = duration.Text;
                Mark(json, "within", duration.Offset);
                if (!Current.IsSymbol(")")) { throw Expected("')' after the sequence's within (within comes last)", Current); }
                break;
            }

            var start = Current.Offset;
            var first = Current.Is("first");
            if (first) { Take(); }
            if (!Current.Is("event")) { throw Expected(first ? "event after first" : "a step (event NAME or first event NAME) or within in sequence(...)", Current); }
            var step = EventBody("");
            if (first) { step["first"] = true; }
            steps.Add(step);
            Mark(steps, $"[{steps.Count - 1}]", start);
            if (!Accept(",") && !Current.IsSymbol(")")) { throw Expected("',' or ')' after a sequence step", Current); }
        }

        // A missing within is reported by the validation; point it at the closing parenthesis.
        if (!json.ContainsKey("within")) { Mark(json, "within", Current.Offset); }
        Take();
        return new Parsed(json, keyword.Offset);
    }

    /// <summary>A name: a bare word that is no keyword, or a quoted string. Stores it as <paramref name="field"/> of <paramref name="json"/>.</summary>
    private Token Name(JsonObject json, string field, string what, string where)
    {
        var token = Current;
        if (!token.IsName)
        {
            var keyword = token.Kind == TokenKind.Name ? $" ('{token.Text}' is a keyword: write \"{token.Text}\" to use it as a name)" : "";
            throw Expected($"{what} {where}", token, keyword);
        }

        Take();
        json[field] = token.Kind == TokenKind.String ? token.Value : token.Text;
        Mark(json, field, token.Offset);
        return token;
    }

    /// <summary>A comparison operator and, unless it is exists or not exists, the value: <c>= "pro"</c>, <c>not in [1, 2]</c>.</summary>
    private void Comparison(JsonObject json, string subject)
    {
        var token = Current;
        string? op = null;
        if (token.Kind == TokenKind.Symbol) { op = ValueOperator(token.Text); }
        else if (token.Is("contains") || token.Is("in") || token.Is("exists")) { op = token.Text.ToLowerInvariant(); }
        else if (token.Is("starts") || token.Is("ends") || token.Is("not"))
        {
            Take();
            var second = token.Is("not") ? "in or exists" : "with";
            if (!(token.Is("not") ? Current.Is("in") || Current.Is("exists") : Current.Is("with"))) { throw Expected($"{second} after {token.Text}", Current); }
            op = token.Is("starts") ? "starts_with" : token.Is("ends") ? "ends_with" : Current.Is("in") ? "not_in" : "not_exists";
        }

        if (op is null) { throw Expected($"a comparison operator ({Operators}) after {subject}", token); }
        Take();
        json["op"] = op;
        Mark(json, "op", token.Offset);
        if (op is "exists" or "not_exists") { return; }
        var start = Current.Offset;
        json["value"] = Value(0, $"after {subject} {AudienceTextFormatter.OperatorText(op)}");
        Mark(json, "value", start);
    }

    /// <summary>A JSON value: a string, a number, true, false, null, a list <c>[...]</c> or an object <c>{"key": ...}</c>.</summary>
    private JsonNode? Value(int depth, string where)
    {
        var token = Current;
        if (depth > AudienceDefinition.MaxJsonDepth) { throw new AudienceTextSyntaxException(token.Offset, $"this value nests deeper than {AudienceDefinition.MaxJsonDepth} levels"); }
        switch (token.Kind)
        {
            case TokenKind.String:
                Take();
                return JsonValue.Create(token.Value);
            case TokenKind.Number:
                Take();
                return JsonNode.Parse(token.Text);
            case TokenKind.Name when token.Is("true") || token.Is("false"):
                Take();
                return JsonValue.Create(token.Is("true"));
            case TokenKind.Name when token.Is("null"):
                Take();
                return null;
            case TokenKind.Symbol when token.Text == "[":
                {
                    Take();
                    var array = new JsonArray();
                    if (Accept("]")) { return array; }
                    do { array.Add(Value(depth + 1, "in the list")); }
                    while (Accept(","));
                    Expect("]", $"to close the list opened at {AudienceText.Position(_text, token.Offset)}");
                    return array;
                }

            case TokenKind.Symbol when token.Text == "{":
                {
                    Take();
                    var obj = new JsonObject();
                    if (Accept("}")) { return obj; }
                    do
                    {
                        var key = Current;
                        if (key.Kind != TokenKind.String) { throw Expected("a key in quotes in the object", key); }
                        if (obj.ContainsKey(key.Value!)) { throw new AudienceTextSyntaxException(key.Offset, $"the key {key.Text} appears twice in this object"); }
                        Take();
                        Expect(":", $"after the key {key.Text}");
                        obj[key.Value!] = Value(depth + 1, $"for the key {key.Text}");
                    }
                    while (Accept(","));
                    Expect("}", $"to close the object opened at {AudienceText.Position(_text, token.Offset)}");
                    return obj;
                }

            default:
                throw Expected($"a value (a \"string\", a number, true, false, null, a [list] or an {{\"object\": ...}}) {where}", token);
        }
    }

    private static string? ValueOperator(string symbol) => symbol switch
    {
        "=" => "eq",
        "!=" => "neq",
        ">" => "gt",
        ">=" => "gte",
        "<" => "lt",
        "<=" => "lte",
        _ => null,
    };

    private Parsed Group(string kind, List<Parsed> items, int offset)
    {
        var array = new JsonArray();
        for (var i = 0; i < items.Count; i++)
        {
            array.Add(items[i].Json);
            Mark(array, $"[{i}]", items[i].Offset);
        }

        var json = new JsonObject { [kind] = array };
        Mark(json, kind, offset);
        return new Parsed(json, offset);
    }

    private void Nest(int depth, Token at)
    {
        if (depth > MaxNesting)
        {
            throw new AudienceTextSyntaxException(at.Offset, $"the definition nests deeper than {MaxNesting} levels of parentheses, not, all and any");
        }
    }

    private void Mark(JsonNode node, string field, int offset)
    {
        if (!_positions.TryGetValue(node, out var fields)) { _positions[node] = fields = []; }
        fields[field] = offset;
    }

    private Token Take() => _tokens[_next++];

    private bool Accept(string symbolOrKeyword)
    {
        var token = Current;
        if (!(token.IsSymbol(symbolOrKeyword) || token.Is(symbolOrKeyword))) { return false; }
        _next++;
        return true;
    }

    private void Expect(string symbol, string why)
    {
        if (!Accept(symbol)) { throw Expected($"'{symbol}' {why}", Current); }
    }

    private void ExpectKeyword(string keyword, string why)
    {
        if (!Current.Is(keyword)) { throw Expected($"{keyword} {why}".TrimEnd(), Current); }
        _next++;
    }

    private AudienceTextSyntaxException Expected(string what, Token found, string hint = "") =>
        new(found.Offset, $"expected {what}, found {Found(found)}{hint}");

    private static AudienceTextSyntaxException LexError(Token token) => new(token.Offset, token.Value!);

    private static string Found(Token token) => token.Kind switch
    {
        TokenKind.End => "the end of the text",
        TokenKind.String => $"the string {Shorten(token.Text)}",
        TokenKind.Number => $"the number {Shorten(token.Text)}",
        _ => $"'{Shorten(token.Text)}'",
    };

    private static string Shorten(string text) => text.Length <= 40 ? text : $"{text[..37]}...";
}

/// <summary>The JSON form of a parsed text and where each of its fields was written.</summary>
internal sealed class ParsedDefinition(JsonObject json, int offset, Dictionary<JsonNode, Dictionary<string, int>> positions)
{
    public JsonObject Json { get; } = json;

    /// <summary>
    /// Where in the text the node at a validation error's path (<c>and[1].count.value</c>) was written: the deepest
    /// field along the path that has a position, else the start of the definition.
    /// </summary>
    public int Locate(string path)
    {
        var best = offset;
        JsonNode? node = Json;
        foreach (var segment in Segments(path))
        {
            if (node is null) { break; }
            if (positions.TryGetValue(node, out var fields) && fields.TryGetValue(segment, out var at)) { best = at; }
            node = node switch
            {
                JsonObject obj => obj.TryGetPropertyValue(segment, out var child) ? child : null,
                JsonArray array when segment.StartsWith('[') && int.TryParse(segment.AsSpan(1, segment.Length - 2), out var i) && i < array.Count => array[i],
                _ => null,
            };
        }

        return best;
    }

    /// <summary><c>and[1].count.value</c> → <c>and</c>, <c>[1]</c>, <c>count</c>, <c>value</c>.</summary>
    private static IEnumerable<string> Segments(string path)
    {
        foreach (var part in path.Split('.', StringSplitOptions.RemoveEmptyEntries))
        {
            var bracket = part.IndexOf('[', StringComparison.Ordinal);
            if (bracket != 0) { yield return bracket < 0 ? part : part[..bracket]; }
            if (bracket < 0) { continue; }
            foreach (var index in part[bracket..].Split(']', StringSplitOptions.RemoveEmptyEntries)) { yield return index + "]"; }
        }
    }
}
