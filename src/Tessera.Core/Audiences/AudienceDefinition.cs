using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using Tessera.Core.Conditions;

namespace Tessera.Core.Audiences;

/// <summary>
/// The JSON form of audience definitions: <c>Parse</c> checks a definition and reports every problem with
/// the path of the node at fault; <see cref="ToJson"/> writes the canonical form back.
/// </summary>
public static class AudienceDefinition
{
    /// <summary>Deepest nesting accepted, so a hostile definition cannot exhaust the stack.</summary>
    public const int MaxDepth = 32;

    /// <summary>Most steps in one sequence (each step is one more join in SQL).</summary>
    public const int MaxSequenceSteps = 6;

    /// <summary>
    /// Deepest JSON nesting read from text: two levels per <c>and</c>/<c>or</c> (object and array) under
    /// <see cref="MaxDepth"/>, plus room for an event filter's value. The reader's default (64) rejected valid
    /// definitions, 32 <c>and</c>s deep, as invalid JSON before <see cref="MaxDepth"/> could name the node.
    /// </summary>
    public const int MaxJsonDepth = 160;

    private static readonly string[] Kinds = ["and", "or", "not", "trait", "identifier", "computed", "event", "sequence", "segment"];

    private static readonly JsonDocumentOptions DocumentOptions = new() { MaxDepth = MaxJsonDepth };

    /// <summary>Parses <paramref name="json"/>; on any problem returns null and every problem found.</summary>
    public static AudienceCondition? Parse(JsonElement json, out IReadOnlyList<DefinitionError> errors)
    {
        var found = new List<DefinitionError>();

        // A string with an unpaired surrogate escape ("\uD800") makes every read of it throw: refuse it up front.
        if (InvalidText(json, "") is { } invalid)
        {
            errors = [invalid];
            return null;
        }

        var condition = ParseNode(json, "", 0, found);
        errors = found;
        return found.Count == 0 ? condition : null;
    }

    /// <summary>Parses a definition given as JSON text.</summary>
    public static AudienceCondition? Parse(string json, out IReadOnlyList<DefinitionError> errors)
    {
        try
        {
            using var document = JsonDocument.Parse(json, DocumentOptions);
            return Parse(document.RootElement, out errors);
        }
        catch (JsonException e)
        {
            errors = [new DefinitionError("", $"is not valid JSON: {e.Message}")];
            return null;
        }
    }

    /// <summary>The ids of every audience the definition refers to, at any depth.</summary>
    public static IReadOnlyList<string> ReferencedSegments(AudienceCondition condition)
    {
        var ids = new List<string>();
        Walk(condition, c => { if (c is SegmentReference r && !ids.Contains(r.SegmentId)) { ids.Add(r.SegmentId); } });
        return ids;
    }

    /// <summary>Visits every node, parents before children.</summary>
    public static void Walk(AudienceCondition condition, Action<AudienceCondition> visit)
    {
        visit(condition);
        switch (condition)
        {
            case AllOf all: foreach (var c in all.Conditions) { Walk(c, visit); } break;
            case AnyOf any: foreach (var c in any.Conditions) { Walk(c, visit); } break;
            case NotCondition not: Walk(not.Condition, visit); break;
            default: break;
        }
    }

    private static AudienceCondition? ParseNode(JsonElement json, string path, int depth, List<DefinitionError> errors)
    {
        if (depth > MaxDepth) { return Fail(errors, path, $"nests deeper than {MaxDepth} levels"); }
        if (json.ValueKind != JsonValueKind.Object) { return Fail(errors, path, $"must be an object (a condition), not {Kind(json)}"); }
        var kinds = Kinds.Where(k => json.TryGetProperty(k, out _)).ToList();
        if (kinds.Count == 0) { return Fail(errors, path, $"is not a condition: expected one of {string.Join(", ", Kinds)}"); }
        if (kinds.Count > 1) { return Fail(errors, path, $"has both '{kinds[0]}' and '{kinds[1]}': a condition is exactly one of {string.Join(", ", Kinds)}"); }
        var kind = kinds[0];
        var value = json.GetProperty(kind);
        switch (kind)
        {
            case "and":
            case "or":
                {
                    var at = Join(path, kind);
                    if (value.ValueKind != JsonValueKind.Array) { return Fail(errors, at, "must be an array of conditions"); }
                    if (value.GetArrayLength() == 0) { return Fail(errors, at, "must hold at least one condition"); }
                    var children = new List<AudienceCondition>();
                    var i = 0;
                    foreach (var child in value.EnumerateArray())
                    {
                        if (ParseNode(child, $"{at}[{i++}]", depth + 1, errors) is { } c) { children.Add(c); }
                    }

                    Unknown(json, path, [kind], errors);
                    return kind == "and" ? new AllOf(children) : new AnyOf(children);
                }

            case "not":
                {
                    Unknown(json, path, ["not"], errors);
                    return ParseNode(value, Join(path, "not"), depth + 1, errors) is { } c ? new NotCondition(c) : null;
                }

            case "trait":
            case "identifier":
            case "computed":
                return ParseValueCondition(json, path, kind, errors);
            case "event":
                return ParseEvent(json, path, errors);
            case "sequence":
                return ParseSequence(json, path, errors);
            default:
                Unknown(json, path, ["segment"], errors);
                if (value.ValueKind != JsonValueKind.String || string.IsNullOrWhiteSpace(value.GetString())) { return Fail(errors, Join(path, "segment"), "must be the id of an audience"); }
                return new SegmentReference(value.GetString()!);
        }
    }

    private static AudienceCondition? ParseValueCondition(JsonElement json, string path, string kind, List<DefinitionError> errors)
    {
        Unknown(json, path, [kind, "op", "value"], errors);
        var name = RequiredString(json, path, kind, errors);
        var before = errors.Count;
        var (op, value) = ParseComparison(json, path, errors);
        if (name is null || errors.Count > before) { return null; }
        return kind switch
        {
            "trait" => new TraitCondition(name, op!, value),
            "identifier" => new IdentifierCondition(name, op!, value),
            _ => new ComputedCondition(name, op!, value),
        };
    }

    private static (string? Op, JsonElement? Value) ParseComparison(JsonElement json, string path, List<DefinitionError> errors)
    {
        var op = RequiredString(json, path, "op", errors);
        if (op is null) { return (null, null); }
        JsonElement? value = json.TryGetProperty("value", out var v) && v.ValueKind != JsonValueKind.Null ? v.Clone() : null;
        var problem = new PropertyFilter("x", op, value).Problem();
        if (problem is null && op is "exists" or "not_exists" && value is not null)
        {
            // Unused, it would be kept and written back, making two definitions of one meaning (and no text form).
            problem = $"value is not used with op '{op}': leave it out";
        }

        if (problem is not null)
        {
            errors.Add(new DefinitionError(Join(path, problem.StartsWith("op", StringComparison.Ordinal) ? "op" : "value"), problem));
            return (null, null);
        }

        return (op, value);
    }

    private static EventCondition? ParseEvent(JsonElement json, string path, List<DefinitionError> errors)
    {
        Unknown(json, path, ["event", "where", "within", "from", "to", "count", "sum"], errors);
        var before = errors.Count;
        var name = RequiredString(json, path, "event", errors);
        var where = ParseWhere(json, path, errors);
        var window = ParseWindow(json, path, errors);
        NumberComparison? count = null;
        NumberComparison? sum = null;
        string? sumProperty = null;
        if (json.TryGetProperty("count", out var c)) { count = ParseNumberComparison(c, Join(path, "count"), [], errors); }
        if (json.TryGetProperty("sum", out var s))
        {
            sum = ParseNumberComparison(s, Join(path, "sum"), ["property"], errors);
            sumProperty = s.ValueKind == JsonValueKind.Object ? RequiredString(s, Join(path, "sum"), "property", errors) : null;
        }

        if (count is not null && sum is not null) { errors.Add(new DefinitionError(path, "has both 'count' and 'sum': use one, or two conditions joined by 'and'")); }
        return errors.Count > before ? null : new EventCondition(name!, where, window, count, sumProperty, sum);
    }

    private static SequenceCondition? ParseSequence(JsonElement json, string path, List<DefinitionError> errors)
    {
        Unknown(json, path, ["sequence", "within"], errors);
        var before = errors.Count;
        var at = Join(path, "sequence");
        var steps = new List<SequenceStep>();
        var array = json.GetProperty("sequence");
        if (array.ValueKind != JsonValueKind.Array || array.GetArrayLength() < 2)
        {
            errors.Add(new DefinitionError(at, "must be an array of at least two steps"));
        }
        else if (array.GetArrayLength() > MaxSequenceSteps)
        {
            errors.Add(new DefinitionError(at, $"has {array.GetArrayLength()} steps; at most {MaxSequenceSteps} are allowed"));
        }
        else
        {
            var i = 0;
            foreach (var step in array.EnumerateArray())
            {
                var stepPath = $"{at}[{i++}]";
                if (step.ValueKind != JsonValueKind.Object) { errors.Add(new DefinitionError(stepPath, "must be an object: {\"event\": NAME, \"where\": [...], \"first\": true}")); continue; }
                Unknown(step, stepPath, ["event", "where", "first"], errors);
                var name = RequiredString(step, stepPath, "event", errors);
                var where = ParseWhere(step, stepPath, errors);
                var first = false;
                if (step.TryGetProperty("first", out var f))
                {
                    if (f.ValueKind is JsonValueKind.True or JsonValueKind.False) { first = f.GetBoolean(); }
                    else { errors.Add(new DefinitionError(Join(stepPath, "first"), "must be true or false")); }
                }

                if (name is not null) { steps.Add(new SequenceStep(name, where, first)); }
            }
        }

        TimeSpan within = default;
        if (!json.TryGetProperty("within", out var w)) { errors.Add(new DefinitionError(Join(path, "within"), "is required: the longest time from the first step to the last, e.g. \"15m\"")); }
        else if (w.ValueKind != JsonValueKind.String || !Duration.TryParse(w.GetString(), out within)) { errors.Add(NotADuration(w, path)); }
        return errors.Count > before ? null : new SequenceCondition(steps, within);
    }

    internal static List<PropertyFilter> ParseWhere(JsonElement json, string path, List<DefinitionError> errors)
    {
        var filters = new List<PropertyFilter>();
        if (!json.TryGetProperty("where", out var where)) { return filters; }
        var at = Join(path, "where");
        if (where.ValueKind != JsonValueKind.Array) { errors.Add(new DefinitionError(at, "must be an array of property filters")); return filters; }
        var i = 0;
        foreach (var filter in where.EnumerateArray())
        {
            var filterPath = $"{at}[{i++}]";
            if (filter.ValueKind != JsonValueKind.Object) { errors.Add(new DefinitionError(filterPath, "must be an object: {\"property\": PATH, \"op\": OP, \"value\": V}")); continue; }
            Unknown(filter, filterPath, ["property", "op", "value"], errors);
            var property = RequiredString(filter, filterPath, "property", errors);
            var before = errors.Count;
            var (op, value) = ParseComparison(filter, filterPath, errors);
            if (property is not null && errors.Count == before) { filters.Add(new PropertyFilter(property, op!, value)); }
        }

        return filters;
    }

    private static TimeWindow ParseWindow(JsonElement json, string path, List<DefinitionError> errors)
    {
        TimeSpan? within = null;
        DateTimeOffset? from = null;
        DateTimeOffset? to = null;
        if (json.TryGetProperty("within", out var w))
        {
            if (w.ValueKind == JsonValueKind.String && Duration.TryParse(w.GetString(), out var d)) { within = d; }
            else { errors.Add(NotADuration(w, path)); }
        }

        DateTimeOffset? Instant(string field)
        {
            if (!json.TryGetProperty(field, out var t)) { return null; }
            if (t.ValueKind == JsonValueKind.String && DateTimeOffset.TryParse(t.GetString(), CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal | DateTimeStyles.AdjustToUniversal, out var at)) { return at; }
            errors.Add(new DefinitionError(Join(path, field), $"{Show(t)} is not an ISO 8601 date or time such as \"2026-01-31\" or \"2026-01-31T12:00:00Z\""));
            return null;
        }

        from = Instant("from");
        to = Instant("to");
        if (within is not null && (json.TryGetProperty("from", out _) || json.TryGetProperty("to", out _)))
        {
            errors.Add(new DefinitionError(Join(path, "within"), "cannot be combined with 'from'/'to': use a relative window or absolute bounds"));
        }

        if (from is not null && to is not null && from >= to) { errors.Add(new DefinitionError(Join(path, "to"), "must be after 'from'")); }
        return new TimeWindow(within, from, to);
    }

    private static NumberComparison? ParseNumberComparison(JsonElement json, string path, string[] extra, List<DefinitionError> errors)
    {
        if (json.ValueKind != JsonValueKind.Object) { return Fail<NumberComparison>(errors, path, "must be an object: {\"op\": \"gte\", \"value\": 3}"); }
        Unknown(json, path, ["op", "value", .. extra], errors);
        var op = RequiredString(json, path, "op", errors);
        if (op is not null && !NumberComparison.Operators.Contains(op))
        {
            errors.Add(new DefinitionError(Join(path, "op"), $"'{op}' is not one of {string.Join(", ", NumberComparison.Operators)}"));
            op = null;
        }

        if (json.TryGetProperty("value", out var v) && v.ValueKind == JsonValueKind.Number && !v.TryGetDecimal(out _))
        {
            return Fail<NumberComparison>(errors, Join(path, "value"), $"{v.GetRawText()} is out of range for a decimal number");
        }

        if (!json.TryGetProperty("value", out v) || v.ValueKind != JsonValueKind.Number || !v.TryGetDecimal(out var value))
        {
            return Fail<NumberComparison>(errors, Join(path, "value"), "is required and must be a number");
        }

        return op is null ? null : new NumberComparison(op, value);
    }

    private static string? RequiredString(JsonElement json, string path, string field, List<DefinitionError> errors)
    {
        if (json.TryGetProperty(field, out var v) && v.ValueKind == JsonValueKind.String && !string.IsNullOrWhiteSpace(v.GetString())) { return v.GetString(); }
        errors.Add(new DefinitionError(Join(path, field), json.TryGetProperty(field, out _) ? $"must be a non-empty string, not {Show(v)}" : "is required"));
        return null;
    }

    private static void Unknown(JsonElement json, string path, string[] known, List<DefinitionError> errors)
    {
        foreach (var property in json.EnumerateObject())
        {
            if (!known.Contains(property.Name)) { errors.Add(new DefinitionError(Join(path, property.Name), $"is not a field here (expected {string.Join(", ", known)})")); }
        }
    }

    private static AudienceCondition? Fail(List<DefinitionError> errors, string path, string message) => Fail<AudienceCondition>(errors, path, message);

    private static T? Fail<T>(List<DefinitionError> errors, string path, string message)
        where T : class
    {
        errors.Add(new DefinitionError(path, message));
        return null;
    }

    private static DefinitionError NotADuration(JsonElement value, string path) =>
        new(Join(path, "within"), $"{Show(value)} is not a duration such as 15m, 2h, 30d or 1w (at most {FormatDuration(Duration.Max)})");

    /// <summary>The first string or field name, at any depth, that is not valid UTF-16, or null.</summary>
    private static DefinitionError? InvalidText(JsonElement json, string path)
    {
        const string Message = "holds text that is not valid Unicode (an unpaired surrogate such as \\uD800)";
        switch (json.ValueKind)
        {
            case JsonValueKind.String:
                try { _ = json.GetString(); }
                catch (InvalidOperationException) { return new DefinitionError(path, Message); }
                return null;
            case JsonValueKind.Array:
                var i = 0;
                foreach (var item in json.EnumerateArray())
                {
                    if (InvalidText(item, $"{path}[{i++}]") is { } error) { return error; }
                }

                return null;
            case JsonValueKind.Object:
                foreach (var property in json.EnumerateObject())
                {
                    string name;
                    try { name = property.Name; }
                    catch (InvalidOperationException) { return new DefinitionError(path, $"has a field name that {Message}"); }
                    if (InvalidText(property.Value, Join(path, name)) is { } error) { return error; }
                }

                return null;
            default:
                return null;
        }
    }

    private static string Join(string path, string field) => path.Length == 0 ? field : $"{path}.{field}";

    private static string Kind(JsonElement json) => json.ValueKind.ToString().ToLowerInvariant();

    private static string Show(JsonElement json) => json.ValueKind == JsonValueKind.String ? $"'{json.GetString()}'" : json.GetRawText();

    /// <summary>The canonical JSON form of a definition (what the API returns and stores).</summary>
    public static JsonObject ToJson(AudienceCondition condition) => condition switch
    {
        AllOf all => new JsonObject { ["and"] = new JsonArray([.. all.Conditions.Select(c => (JsonNode)ToJson(c))]) },
        AnyOf any => new JsonObject { ["or"] = new JsonArray([.. any.Conditions.Select(c => (JsonNode)ToJson(c))]) },
        NotCondition not => new JsonObject { ["not"] = ToJson(not.Condition) },
        TraitCondition t => Comparison("trait", t.Trait, t.Op, t.Value),
        IdentifierCondition i => Comparison("identifier", i.Type, i.Op, i.Value),
        ComputedCondition c => Comparison("computed", c.Name, c.Op, c.Value),
        EventCondition e => EventJson(e),
        SequenceCondition s => new JsonObject
        {
            ["sequence"] = new JsonArray([.. s.Steps.Select(StepJson)]),
            ["within"] = FormatDuration(s.Within),
        },
        SegmentReference r => new JsonObject { ["segment"] = r.SegmentId },
        _ => throw new ArgumentOutOfRangeException(nameof(condition), condition.GetType().Name, "unknown condition kind"),
    };

    private static JsonObject Comparison(string kind, string name, string op, JsonElement? value)
    {
        var json = new JsonObject { [kind] = name, ["op"] = op };
        if (value is { } v) { json["value"] = JsonNode.Parse(v.GetRawText()); }
        return json;
    }

    private static JsonObject EventJson(EventCondition e)
    {
        var json = new JsonObject { ["event"] = e.Event };
        if (e.Where.Count > 0) { json["where"] = WhereJson(e.Where); }
        if (e.Window.Within is { } within) { json["within"] = FormatDuration(within); }
        if (e.Window.From is { } from) { json["from"] = FormatInstant(from); }
        if (e.Window.To is { } to) { json["to"] = FormatInstant(to); }
        if (e.Count is { } count) { json["count"] = new JsonObject { ["op"] = count.Op, ["value"] = count.Value }; }
        if (e.Sum is { } sum) { json["sum"] = new JsonObject { ["property"] = e.SumProperty, ["op"] = sum.Op, ["value"] = sum.Value }; }
        return json;
    }

    private static JsonNode StepJson(SequenceStep step)
    {
        var json = new JsonObject { ["event"] = step.Event };
        if (step.Where.Count > 0) { json["where"] = WhereJson(step.Where); }
        if (step.First) { json["first"] = true; }
        return json;
    }

    internal static JsonArray WhereJson(IReadOnlyList<PropertyFilter> where) =>
        new([.. where.Select(f => (JsonNode)Comparison("property", f.Property, f.Op, f.Value))]);

    /// <summary>The shortest exact form in the largest whole unit up to days: <c>90d</c>, <c>14d</c> (for <c>2w</c>), <c>15m</c>.</summary>
    public static string FormatDuration(TimeSpan duration)
    {
        var seconds = (long)duration.TotalSeconds;
        if (seconds % 86400 == 0) { return $"{seconds / 86400}d"; }
        if (seconds % 3600 == 0) { return $"{seconds / 3600}h"; }
        if (seconds % 60 == 0) { return $"{seconds / 60}m"; }
        return $"{seconds}s";
    }

    public static string FormatInstant(DateTimeOffset at) => at.UtcDateTime.ToString("yyyy-MM-dd'T'HH:mm:ss.FFFFFFF'Z'", CultureInfo.InvariantCulture);
}
