using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using Tessera.Core.Audiences;
using Tessera.Core.Conditions;

namespace Tessera.Core.Journeys;

/// <summary>What a definition refers to outside itself, so a reference can be checked when the journey is saved.</summary>
public interface IJourneyReferences
{
    bool SegmentExists(string id);

    /// <summary>The destination's type (<c>webhook</c>, <c>email</c>...), or null when there is no such destination.</summary>
    string? DestinationType(string id);

    /// <summary>True when a saved audience reads events of this name: only then are they kept in memory for a branch to read.</summary>
    bool AudiencesRead(string eventName);
}

/// <summary>
/// Reads a journey definition from JSON and checks it, reporting every problem with the path of the field at
/// fault (<c>steps[2].timeout</c>, <c>entry.where[0].op</c>); <see cref="ToJson"/> writes the canonical form back.
/// </summary>
public static partial class JourneyParser
{
    /// <summary>Most steps in one journey.</summary>
    public const int MaxSteps = 200;

    /// <summary>Destination types a send step may use: those that deliver to one profile.</summary>
    public static readonly IReadOnlyList<string> SendableTypes = ["webhook", "email"];

    private static readonly string[] StepTypes = ["wait", "wait_for_event", "branch", "send", "exit"];

    private static readonly string[] ExitKinds = ["event", "leftSegment", "enteredSegment"];

    [GeneratedRegex("^[A-Za-z0-9][A-Za-z0-9_.\\-]{0,63}$")]
    private static partial Regex StepIdPattern();

    /// <summary>
    /// Parses the definition fields of <paramref name="body"/> (<c>entry</c>, <c>reentry</c>, <c>exit</c>, <c>steps</c>);
    /// <paramref name="otherFields"/> are the body's other fields the caller reads itself (anything else is an error).
    /// With <paramref name="references"/> null, references are not checked (a stored definition being read back).
    /// </summary>
    public static JourneyDefinition? Parse(JsonElement body, IJourneyReferences? references, IReadOnlyCollection<string> otherFields, out IReadOnlyList<DefinitionError> errors)
    {
        var found = new List<DefinitionError>();
        errors = found;
        if (body.ValueKind != JsonValueKind.Object)
        {
            found.Add(new DefinitionError("", "must be a JSON object {name, entry, steps, ...}"));
            return null;
        }

        foreach (var p in body.EnumerateObject())
        {
            if (p.Name is not ("entry" or "reentry" or "exit" or "steps") && !otherFields.Contains(p.Name))
            {
                found.Add(new DefinitionError(p.Name, $"is not a field of a journey (expected {string.Join(", ", ["entry", "reentry", "exit", "steps", .. otherFields])})"));
            }
        }

        var entry = ParseEntry(body, references, found);
        var reentry = ParseReentry(body, found);
        var exit = ParseExit(body, references, found);
        var steps = ParseSteps(body, references, found);
        if (found.Count > 0) { return null; }
        return new JourneyDefinition(entry!, reentry, exit, steps);
    }

    /// <summary>Parses a stored definition (references are not checked again); throws when it no longer parses.</summary>
    public static JourneyDefinition ParseStored(string json, string what)
    {
        using var document = JsonDocument.Parse(json, new JsonDocumentOptions { MaxDepth = AudienceDefinition.MaxJsonDepth });
        return Parse(document.RootElement, null, [], out var errors)
            ?? throw new InvalidDataException($"stored definition of {what} no longer parses: {string.Join("; ", errors)}");
    }

    private static JourneyEntry? ParseEntry(JsonElement body, IJourneyReferences? references, List<DefinitionError> errors)
    {
        if (!body.TryGetProperty("entry", out var entry) || entry.ValueKind == JsonValueKind.Null)
        {
            errors.Add(new DefinitionError("entry", "is required: {\"segment\": \"seg_...\"} (entering an audience) or {\"event\": \"Product Viewed\", \"where\": [...]}"));
            return null;
        }

        if (entry.ValueKind != JsonValueKind.Object) { return Fail<JourneyEntry>(errors, "entry", "must be an object: {\"segment\": ID} or {\"event\": NAME, \"where\": [...]}"); }
        var hasSegment = entry.TryGetProperty("segment", out _);
        var hasEvent = entry.TryGetProperty("event", out _);
        if (hasSegment == hasEvent) { return Fail<JourneyEntry>(errors, "entry", "must have exactly one of segment (an audience id) and event (a track event name)"); }
        if (hasSegment)
        {
            Unknown(entry, "entry", ["segment"], errors);
            var segment = RequiredString(entry, "entry", "segment", errors);
            if (segment is not null && references is not null && !references.SegmentExists(segment)) { errors.Add(new DefinitionError("entry.segment", $"no audience '{segment}'")); }
            return segment is null ? null : new JourneyEntry(segment, null, []);
        }

        Unknown(entry, "entry", ["event", "where"], errors);
        var name = RequiredString(entry, "entry", "event", errors);
        var where = AudienceDefinition.ParseWhere(entry, "entry", errors);
        return name is null ? null : new JourneyEntry(null, name, where);
    }

    private static ReentryPolicy ParseReentry(JsonElement body, List<DefinitionError> errors)
    {
        if (!body.TryGetProperty("reentry", out var r) || r.ValueKind is JsonValueKind.Null or JsonValueKind.False) { return ReentryPolicy.Never; }
        if (r.ValueKind == JsonValueKind.True) { return new ReentryPolicy(true, null); }
        if (r.ValueKind != JsonValueKind.Object)
        {
            errors.Add(new DefinitionError("reentry", "must be false (the default: once per profile), true, or {\"allowed\": true, \"after\": \"30d\"}"));
            return ReentryPolicy.Never;
        }

        Unknown(r, "reentry", ["allowed", "after"], errors);
        string? after = null;
        if (r.TryGetProperty("after", out var a) && a.ValueKind != JsonValueKind.Null)
        {
            if (a.ValueKind != JsonValueKind.String || !Duration.TryParse(a.GetString(), out _)) { errors.Add(NotADuration("reentry.after", a)); }
            else { after = a.GetString(); }
        }

        var allowed = after is not null;
        if (r.TryGetProperty("allowed", out var al) && al.ValueKind != JsonValueKind.Null)
        {
            if (al.ValueKind is not (JsonValueKind.True or JsonValueKind.False)) { errors.Add(new DefinitionError("reentry.allowed", "must be true or false")); }
            else if (!al.GetBoolean() && after is not null) { errors.Add(new DefinitionError("reentry.after", "needs re-entry allowed: drop it or set allowed to true")); }
            else { allowed = al.GetBoolean(); }
        }

        return new ReentryPolicy(allowed, allowed ? after : null);
    }

    private static List<ExitTrigger> ParseExit(JsonElement body, IJourneyReferences? references, List<DefinitionError> errors)
    {
        var triggers = new List<ExitTrigger>();
        if (!body.TryGetProperty("exit", out var exit) || exit.ValueKind == JsonValueKind.Null) { return triggers; }
        if (exit.ValueKind != JsonValueKind.Array)
        {
            errors.Add(new DefinitionError("exit", "must be an array of exit triggers: [{\"event\": \"Order Completed\"}, {\"leftSegment\": \"seg_...\"}, {\"enteredSegment\": \"seg_...\"}]"));
            return triggers;
        }

        var i = 0;
        foreach (var t in exit.EnumerateArray())
        {
            var path = $"exit[{i++}]";
            if (t.ValueKind != JsonValueKind.Object) { errors.Add(new DefinitionError(path, "must be an object: {\"event\": NAME, \"where\": [...]}, {\"leftSegment\": ID} or {\"enteredSegment\": ID}")); continue; }
            var kinds = ExitKinds.Where(k => t.TryGetProperty(k, out _)).ToList();
            if (kinds.Count != 1) { errors.Add(new DefinitionError(path, "must have exactly one of event, leftSegment and enteredSegment")); continue; }
            if (kinds[0] == "event")
            {
                Unknown(t, path, ["event", "where"], errors);
                var name = RequiredString(t, path, "event", errors);
                var where = AudienceDefinition.ParseWhere(t, path, errors);
                if (name is not null) { triggers.Add(new ExitTrigger(name, where, null, null)); }
                continue;
            }

            Unknown(t, path, [kinds[0]], errors);
            var segment = RequiredString(t, path, kinds[0], errors);
            if (segment is null) { continue; }
            if (references is not null && !references.SegmentExists(segment)) { errors.Add(new DefinitionError($"{path}.{kinds[0]}", $"no audience '{segment}'")); continue; }
            triggers.Add(kinds[0] == "leftSegment" ? new ExitTrigger(null, [], null, segment) : new ExitTrigger(null, [], segment, null));
        }

        return triggers;
    }

    private static List<JourneyStep> ParseSteps(JsonElement body, IJourneyReferences? references, List<DefinitionError> errors)
    {
        var steps = new List<JourneyStep>();
        if (!body.TryGetProperty("steps", out var array) || array.ValueKind != JsonValueKind.Array || array.GetArrayLength() == 0)
        {
            errors.Add(new DefinitionError("steps", "is required: a non-empty array of steps ({\"type\": \"wait\", \"duration\": \"1h\"}, ...)"));
            return steps;
        }

        if (array.GetArrayLength() > MaxSteps)
        {
            errors.Add(new DefinitionError("steps", $"has {array.GetArrayLength()} steps; at most {MaxSteps}"));
            return steps;
        }

        // Ids first, so a step may name one that comes after it.
        var raw = array.EnumerateArray().ToList();
        var ids = new List<string?>();
        for (var i = 0; i < raw.Count; i++)
        {
            var path = $"steps[{i}]";
            string? id = $"step_{i + 1}";
            if (raw[i].ValueKind == JsonValueKind.Object && raw[i].TryGetProperty("id", out var idValue) && idValue.ValueKind != JsonValueKind.Null)
            {
                id = idValue.ValueKind == JsonValueKind.String ? idValue.GetString() : null;
                if (id is null || !StepIdPattern().IsMatch(id)) { errors.Add(new DefinitionError($"{path}.id", "must be 1-64 letters, digits, _ . - (starting with a letter or digit)")); id = null; }
                else if (id == JourneyStep.End) { errors.Add(new DefinitionError($"{path}.id", $"'{JourneyStep.End}' is reserved: as a target it ends the run")); id = null; }
                else if (ids.Contains(id)) { errors.Add(new DefinitionError($"{path}.id", $"'{id}' is already the id of steps[{ids.IndexOf(id)}]")); id = null; }
            }

            ids.Add(id);
        }

        for (var i = 0; i < raw.Count; i++)
        {
            var path = $"steps[{i}]";
            var following = i + 1 < raw.Count ? ids[i + 1] ?? JourneyStep.End : JourneyStep.End;
            if (ParseStep(raw[i], path, ids[i], following, ids, references, errors) is { } step) { steps.Add(step); }
        }

        if (errors.Count == 0) { CheckLoops(steps, errors); }
        return steps;
    }

    private static JourneyStep? ParseStep(JsonElement json, string path, string? id, string following, List<string?> ids, IJourneyReferences? references, List<DefinitionError> errors)
    {
        if (json.ValueKind != JsonValueKind.Object) { return Fail<JourneyStep>(errors, path, "must be an object: {\"type\": \"wait\", \"duration\": \"1h\"}"); }
        var type = RequiredString(json, path, "type", errors);
        if (type is null) { return null; }
        if (!StepTypes.Contains(type)) { return Fail<JourneyStep>(errors, $"{path}.type", $"'{type}' is not one of {string.Join(", ", StepTypes)}"); }
        var before = errors.Count;
        string Target(string field, string fallback)
        {
            if (!json.TryGetProperty(field, out var t) || t.ValueKind == JsonValueKind.Null) { return fallback; }
            if (t.ValueKind != JsonValueKind.String) { errors.Add(new DefinitionError($"{path}.{field}", "must be a step id or \"exit\"")); return fallback; }
            var target = t.GetString()!;
            if (target != JourneyStep.End && !ids.Contains(target)) { errors.Add(new DefinitionError($"{path}.{field}", $"no step '{target}' (step ids: {string.Join(", ", ids.Where(x => x is not null))}; or \"exit\")")); }
            return target;
        }

        string? Period(string field)
        {
            if (!json.TryGetProperty(field, out var d) || d.ValueKind == JsonValueKind.Null) { errors.Add(new DefinitionError($"{path}.{field}", "is required: a duration such as 30m, 1h, 3d or 1w")); return null; }
            if (d.ValueKind != JsonValueKind.String || !Duration.TryParse(d.GetString(), out _)) { errors.Add(NotADuration($"{path}.{field}", d)); return null; }
            return d.GetString();
        }

        JourneyStep? step;
        switch (type)
        {
            case "wait":
                {
                    Unknown(json, path, ["id", "type", "duration", "next"], errors);
                    var duration = Period("duration");
                    step = new WaitStep(id ?? "", duration ?? "", Target("next", following));
                    break;
                }

            case "wait_for_event":
                {
                    Unknown(json, path, ["id", "type", "event", "where", "timeout", "onEvent", "onTimeout"], errors);
                    var name = RequiredString(json, path, "event", errors);
                    var where = AudienceDefinition.ParseWhere(json, path, errors);
                    var timeout = Period("timeout");
                    step = new WaitForEventStep(id ?? "", name ?? "", where, timeout ?? "", Target("onEvent", following), Target("onTimeout", following));
                    break;
                }

            case "branch":
                {
                    Unknown(json, path, ["id", "type", "condition", "then", "else"], errors);
                    AudienceCondition? condition = null;
                    if (!json.TryGetProperty("condition", out var c) || c.ValueKind == JsonValueKind.Null)
                    {
                        errors.Add(new DefinitionError($"{path}.condition", "is required: a condition in the audience language, e.g. {\"event\": \"Order Completed\", \"within\": \"7d\"} or {\"segment\": \"seg_...\"}"));
                    }
                    else
                    {
                        condition = AudienceDefinition.Parse(c, out var conditionErrors);
                        errors.AddRange(conditionErrors.Select(e => new DefinitionError(e.Path.Length == 0 ? $"{path}.condition" : $"{path}.condition.{e.Path}", e.Message)));
                        if (condition is not null && references is not null)
                        {
                            foreach (var segment in AudienceDefinition.ReferencedSegments(condition).Where(s => !references.SegmentExists(s)))
                            {
                                errors.Add(new DefinitionError($"{path}.condition", $"refers to audience '{segment}', which does not exist"));
                            }

                            // A branch is evaluated in memory on the facts audiences keep: events no audience reads are not kept.
                            var names = new List<string>();
                            AudienceDefinition.Walk(condition, node =>
                            {
                                if (node is EventCondition e) { names.Add(e.Event); }
                                if (node is SequenceCondition q) { names.AddRange(q.Steps.Select(x => x.Event)); }
                            });
                            foreach (var name in names.Distinct(StringComparer.Ordinal).Where(n => !references.AudiencesRead(n)))
                            {
                                errors.Add(new DefinitionError($"{path}.condition", $"reads '{name}' events, which no audience reads, so none are kept in memory to branch on; save an audience on them and branch on {{\"segment\": ID}}, or on the same event condition"));
                            }
                        }
                    }

                    if (!json.TryGetProperty("else", out _)) { errors.Add(new DefinitionError($"{path}.else", "is required: the step for profiles the condition does not hold for (a step id, or \"exit\")")); }
                    step = new BranchStep(id ?? "", condition ?? new AllOf([]), Target("then", following), Target("else", JourneyStep.End));
                    break;
                }

            case "send":
                {
                    Unknown(json, path, ["id", "type", "destination", "next"], errors);
                    var destination = RequiredString(json, path, "destination", errors);
                    if (destination is not null && references is not null)
                    {
                        var kind = references.DestinationType(destination);
                        if (kind is null) { errors.Add(new DefinitionError($"{path}.destination", $"no destination '{destination}'")); }
                        else if (!SendableTypes.Contains(kind)) { errors.Add(new DefinitionError($"{path}.destination", $"'{destination}' is a {kind} destination; a journey sends to {string.Join(" or ", SendableTypes)} destinations")); }
                    }

                    step = new SendStep(id ?? "", destination ?? "", Target("next", following));
                    break;
                }

            default:
                {
                    Unknown(json, path, ["id", "type", "reason"], errors);
                    string? reason = null;
                    if (json.TryGetProperty("reason", out var r) && r.ValueKind != JsonValueKind.Null)
                    {
                        if (r.ValueKind != JsonValueKind.String || r.GetString()!.Length > 200) { errors.Add(new DefinitionError($"{path}.reason", "must be a string of at most 200 characters")); }
                        else { reason = r.GetString(); }
                    }

                    step = new ExitStep(id ?? "", reason);
                    break;
                }
        }

        return errors.Count > before || id is null ? null : step;
    }

    /// <summary>A run visits each step at most once (its sends' keys rely on it): a target that leads back is refused.</summary>
    private static void CheckLoops(List<JourneyStep> steps, List<DefinitionError> errors)
    {
        var index = steps.Select((s, i) => (s.Id, i)).ToDictionary(x => x.Id, x => x.i, StringComparer.Ordinal);
        var state = new int[steps.Count]; // 0 unseen, 1 on the path, 2 done
        bool Visit(int i, List<string> trail)
        {
            state[i] = 1;
            trail.Add(steps[i].Id);
            foreach (var (field, target) in steps[i].Targets)
            {
                if (!index.TryGetValue(target, out var j)) { continue; }
                if (state[j] == 1)
                {
                    errors.Add(new DefinitionError($"steps[{i}].{field}", $"makes a loop ({string.Join(" → ", trail.SkipWhile(t => t != target))} → {target}); a journey runs forward"));
                    return false;
                }

                if (state[j] == 0 && !Visit(j, trail)) { return false; }
            }

            trail.RemoveAt(trail.Count - 1);
            state[i] = 2;
            return true;
        }

        for (var i = 0; i < steps.Count; i++)
        {
            if (state[i] == 0 && !Visit(i, [])) { return; }
        }
    }

    /// <summary>The canonical JSON of a definition (every default written out).</summary>
    public static JsonObject ToJson(JourneyDefinition definition)
    {
        var entry = definition.Entry.SegmentId is { } segment
            ? new JsonObject { ["segment"] = segment }
            : new JsonObject { ["event"] = definition.Entry.Event };
        if (definition.Entry.Where.Count > 0) { entry["where"] = AudienceDefinition.WhereJson(definition.Entry.Where); }
        var reentry = new JsonObject { ["allowed"] = definition.Reentry.Allowed };
        if (definition.Reentry.After is { } after) { reentry["after"] = after; }
        var exit = new JsonArray();
        foreach (var t in definition.Exit)
        {
            var o = t.Event is { } name ? new JsonObject { ["event"] = name } : t.LeftSegment is { } left ? new JsonObject { ["leftSegment"] = left } : new JsonObject { ["enteredSegment"] = t.EnteredSegment };
            if (t.Where.Count > 0) { o["where"] = AudienceDefinition.WhereJson(t.Where); }
            exit.Add(o);
        }

        var steps = new JsonArray();
        foreach (var s in definition.Steps)
        {
            var o = new JsonObject { ["id"] = s.Id, ["type"] = s.Type };
            switch (s)
            {
                case WaitStep w: o["duration"] = w.Duration; o["next"] = w.Next; break;
                case WaitForEventStep w:
                    o["event"] = w.Event;
                    if (w.Where.Count > 0) { o["where"] = AudienceDefinition.WhereJson(w.Where); }
                    o["timeout"] = w.Timeout;
                    o["onEvent"] = w.OnEvent;
                    o["onTimeout"] = w.OnTimeout;
                    break;
                case BranchStep b: o["condition"] = AudienceDefinition.ToJson(b.Condition); o["then"] = b.Then; o["else"] = b.Else; break;
                case SendStep send: o["destination"] = send.DestinationId; o["next"] = send.Next; break;
                case ExitStep x: if (x.Reason is not null) { o["reason"] = x.Reason; } break;
                default: break;
            }

            steps.Add(o);
        }

        return new JsonObject { ["entry"] = entry, ["reentry"] = reentry, ["exit"] = exit, ["steps"] = steps };
    }

    private static string? RequiredString(JsonElement json, string path, string field, List<DefinitionError> errors)
    {
        if (json.TryGetProperty(field, out var v) && v.ValueKind == JsonValueKind.String && !string.IsNullOrWhiteSpace(v.GetString())) { return v.GetString(); }
        errors.Add(new DefinitionError(path.Length == 0 ? field : $"{path}.{field}", json.TryGetProperty(field, out _) ? "must be a non-empty string" : "is required"));
        return null;
    }

    private static void Unknown(JsonElement json, string path, string[] known, List<DefinitionError> errors)
    {
        foreach (var property in json.EnumerateObject())
        {
            if (!known.Contains(property.Name)) { errors.Add(new DefinitionError($"{path}.{property.Name}", $"is not a field here (expected {string.Join(", ", known)})")); }
        }
    }

    private static DefinitionError NotADuration(string path, JsonElement value) =>
        new(path, $"{(value.ValueKind == JsonValueKind.String ? $"'{value.GetString()}'" : value.GetRawText())} is not a duration such as 30m, 1h, 3d or 1w");

    private static T? Fail<T>(List<DefinitionError> errors, string path, string message)
        where T : class
    {
        errors.Add(new DefinitionError(path, message));
        return null;
    }
}
