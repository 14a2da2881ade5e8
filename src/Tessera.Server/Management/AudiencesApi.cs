using System.Text.Json;
using System.Text.Json.Nodes;
using Microsoft.AspNetCore.Http.HttpResults;
using Tessera.Core.Audiences;
using Tessera.Server.Hosting;
using Tessera.Storage;
using Tessera.Storage.Audiences;

namespace Tessera.Server.Management;

/// <summary>
/// <c>/api/segments</c>: audiences (CONTRACT.md calls them segments). A definition is checked with errors that
/// point at the bad node; a saved audience is evaluated over every profile at once and then kept current by every
/// event and by time passing; each entry and exit is recorded on the profile.
/// </summary>
public static class AudiencesApi
{
    public static RouteGroupBuilder MapAudiencesApi(this RouteGroupBuilder api)
    {
        api.MapGet("/segments", List).WithName("ListSegments").ServedFromEngine();
        api.MapPost("/segments", CreateAsync).WithName("CreateSegment");
        api.MapPost("/segments/preview", PreviewAsync).WithName("PreviewSegment")
            .WithSummary("Count and sample of a definition's members, computed in the store's SQL, without saving it.");
        api.MapGet("/segments/overlap", Overlap).WithName("SegmentOverlap").WithSummary("How many profiles are in each, in all and in any of ?ids=a,b,...").ServedFromEngine();
        api.MapGet("/segments/{id}", Get).WithName("GetSegment").ServedFromEngine();
        api.MapPut("/segments/{id}", UpdateAsync).WithName("UpdateSegment");
        api.MapDelete("/segments/{id}", DeleteAsync).WithName("DeleteSegment");
        api.MapGet("/segments/{id}/members", Members).WithName("GetSegmentMembers").ServedFromEngine();
        api.MapGet("/segments/{id}/changes", ChangesAsync).WithName("GetSegmentChanges").WithSummary("Who entered and exited, oldest first.").ServedFromEngine();
        api.MapGet("/segments/{id}/size", SizeAsync).WithName("GetSegmentSize").WithSummary("The size over time, per hour or day.");
        api.MapGet("/profiles/{id}/segments", ProfileSegmentsAsync).WithName("GetProfileSegments").WithSummary("A profile's audiences now and every entry and exit.").ServedFromEngine();
        return api;
    }

    /// <summary>What a client sends: a definition as JSON, or as a string in the text form (<see cref="AudienceText"/>).</summary>
    public sealed record AudienceBody(string? Name, string? Description, JsonElement? Definition);

    public sealed record AudienceAnswer(string Id, string Name, string? Description, JsonObject Definition, string Text, int Size, DateTimeOffset CreatedAt, DateTimeOffset UpdatedAt);

    /// <summary>A definition to try: JSON or text; <c>sampleSize</c> 0..1000 (default 20); <c>sql</c> adds the compiled query.</summary>
    public sealed record PreviewBody(JsonElement? Definition, int? SampleSize, bool? Sql);

    public sealed record PreviewAnswer(long Count, IReadOnlyList<string> Sample, double ElapsedMs, JsonObject Definition, string Text, string? Sql, IReadOnlyList<object?>? Parameters);

    public sealed record MembersAnswer(int Count, IReadOnlyList<string> Items, string? Next);

    public sealed record ChangeAnswer(long Id, string SegmentId, string ProfileId, string Type, DateTimeOffset At, long? Seq, string Reason);

    public sealed record ChangesAnswer(IReadOnlyList<ChangeAnswer> Items, long? Next);

    public sealed record SizePoint(DateTimeOffset Start, long Entered, long Exited, long Size);

    public sealed record SizeAnswer(string SegmentId, string Bucket, int Current, IReadOnlyList<SizePoint> Points);

    public sealed record OverlapAnswer(IReadOnlyList<OverlapSize> Segments, int InAll, int InAny, IReadOnlyList<OverlapPair> Pairs);

    public sealed record OverlapSize(string Id, string Name, int Size);

    public sealed record OverlapPair(string A, string B, int Both);

    public sealed record ProfileSegmentsAnswer(string ProfileId, IReadOnlyList<string> Current, IReadOnlyList<ChangeAnswer> History);

    public static Ok<List<AudienceAnswer>> List(ITesseraStore store) =>
        TypedResults.Ok(store.Engine.Audiences.Select(a => Answer(a, store)).ToList());

    public static Results<Ok<AudienceAnswer>, ProblemHttpResult> Get(string id, ITesseraStore store) =>
        store.Engine.GetAudience(id) is { } audience ? TypedResults.Ok(Answer(audience, store)) : NoSuch(id);

    public static async Task<Results<Created<AudienceAnswer>, ProblemHttpResult>> CreateAsync(AudienceBody body, ITesseraStore store, TimeProvider clock, CancellationToken cancellationToken)
    {
        var id = "seg_" + Guid.CreateVersion7().ToString("N")[..20];
        if (Check(body, id, store, out var definition) is { } problem) { return problem; }
        var now = clock.GetUtcNow();
        var audience = new Audience(id, body.Name!.Trim(), body.Description, definition!, now, now);
        await store.SaveAudienceAsync(audience, cancellationToken);
        return TypedResults.Created($"/api/segments/{id}", Answer(audience, store));
    }

    public static async Task<Results<Ok<AudienceAnswer>, ProblemHttpResult>> UpdateAsync(string id, AudienceBody body, ITesseraStore store, TimeProvider clock, CancellationToken cancellationToken)
    {
        if (store.Engine.GetAudience(id) is not { } existing) { return NoSuch(id); }
        if (Check(body, id, store, out var definition) is { } problem) { return problem; }
        var audience = existing with { Name = body.Name!.Trim(), Description = body.Description, Definition = definition!, UpdatedAt = clock.GetUtcNow() };
        await store.SaveAudienceAsync(audience, cancellationToken);
        return TypedResults.Ok(Answer(audience, store));
    }

    public static async Task<Results<NoContent, ProblemHttpResult>> DeleteAsync(string id, ITesseraStore store, CancellationToken cancellationToken)
    {
        if (store.Engine.GetAudience(id) is null) { return NoSuch(id); }
        var users = store.Engine.Audiences.Where(a => a.Id != id && AudienceDefinition.ReferencedSegments(a.Definition).Contains(id)).Select(a => a.Id).ToList();
        if (users.Count > 0)
        {
            return Problems.Field("id", $"audience '{id}' is used by {string.Join(", ", users)}; change or delete those first", StatusCodes.Status409Conflict, "Conflict");
        }

        return await store.DeleteAudienceAsync(id, cancellationToken) ? TypedResults.NoContent() : NoSuch(id);
    }

    public static async Task<Results<Ok<PreviewAnswer>, ProblemHttpResult>> PreviewAsync(PreviewBody body, ITesseraStore store, TimeProvider clock, CancellationToken cancellationToken)
    {
        if (body.SampleSize is < 0 or > 1000) { return Problems.Field("sampleSize", "must be between 0 and 1000"); }
        if (body.Definition is not { } json || json.ValueKind is JsonValueKind.Undefined or JsonValueKind.Null) { return Problems.Field("definition", "is required"); }
        if (Parse(json, out var definition) is { } invalid) { return invalid; }
        foreach (var referenced in AudienceDefinition.ReferencedSegments(definition!))
        {
            if (store.Engine.GetAudience(referenced) is null) { return Problems.Field("definition", $"refers to audience '{referenced}', which does not exist"); }
        }

        var now = clock.GetUtcNow();
        AudienceCondition? Segments(string id) => store.Engine.GetAudience(id)?.Definition;
        var started = System.Diagnostics.Stopwatch.GetTimestamp();
        var preview = await store.PreviewAudienceAsync(definition!, Segments, now, body.SampleSize ?? 20, cancellationToken);
        var elapsed = System.Diagnostics.Stopwatch.GetElapsedTime(started).TotalMilliseconds;
        var sql = body.Sql == true ? store.ExplainAudienceSql(definition!, Segments, now) : null;
        return TypedResults.Ok(new PreviewAnswer(
            preview.Count, body.SampleSize == 0 ? [] : preview.Sample, Math.Round(elapsed, 1), AudienceDefinition.ToJson(definition!), AudienceText.Format(definition!),
            sql?.Text, sql?.Parameters));
    }

    public static Results<Ok<MembersAnswer>, ProblemHttpResult> Members(string id, int? limit, string? after, ITesseraStore store)
    {
        if (store.Engine.GetAudience(id) is null) { return NoSuch(id); }
        if (limit is < 1 or > 10_000) { return Problems.Field("limit", "must be between 1 and 10000"); }
        var take = limit ?? 1000;
        var members = store.Engine.Members(id);
        var start = 0;
        if (after is not null)
        {
            start = members.BinarySearch(after, StringComparer.Ordinal);
            start = start >= 0 ? start + 1 : ~start;
        }

        var page = members.Skip(start).Take(take).ToList();
        var next = start + take < members.Count ? page[^1] : null;
        return TypedResults.Ok(new MembersAnswer(members.Count, page, next));
    }

    public static async Task<Results<Ok<ChangesAnswer>, ProblemHttpResult>> ChangesAsync(string id, long? after, int? limit, ITesseraStore store, CancellationToken cancellationToken)
    {
        if (store.Engine.GetAudience(id) is null) { return NoSuch(id); }
        if (limit is < 1 or > 10_000) { return Problems.Field("limit", "must be between 1 and 10000"); }
        var take = limit ?? 1000;
        var changes = await store.GetAudienceChangesAsync(new AudienceChangeQuery(id, null, after ?? 0, take), cancellationToken);
        return TypedResults.Ok(new ChangesAnswer([.. changes.Select(ChangeAnswerOf)], changes.Count == take ? changes[^1].Id : null));
    }

    public static async Task<Results<Ok<SizeAnswer>, ProblemHttpResult>> SizeAsync(string id, string? bucket, ITesseraStore store, CancellationToken cancellationToken)
    {
        if (store.Engine.GetAudience(id) is null) { return NoSuch(id); }
        bucket ??= "day";
        if (bucket is not ("hour" or "day")) { return Problems.Field("bucket", $"'{bucket}' is not one of hour, day"); }
        var buckets = await store.GetAudienceSizeAsync(id, bucket, cancellationToken);
        long size = 0;
        var points = buckets.Select(b => new SizePoint(b.Start, b.Entered, b.Exited, size += b.Entered - b.Exited)).ToList();
        return TypedResults.Ok(new SizeAnswer(id, bucket, store.Engine.MemberCount(id), points));
    }

    public static Results<Ok<OverlapAnswer>, ProblemHttpResult> Overlap(string? ids, ITesseraStore store)
    {
        var list = (ids ?? "").Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).Distinct(StringComparer.Ordinal).ToList();
        if (list.Count < 2) { return Problems.Field("ids", "name at least two audiences: ?ids=seg_a,seg_b"); }
        var sets = new List<(Audience Audience, HashSet<string> Members)>();
        foreach (var id in list)
        {
            if (store.Engine.GetAudience(id) is not { } audience) { return Problems.Field("ids", $"no audience '{id}'", StatusCodes.Status404NotFound, "Not found"); }
            sets.Add((audience, store.Engine.Members(id).ToHashSet(StringComparer.Ordinal)));
        }

        var all = new HashSet<string>(sets[0].Members, StringComparer.Ordinal);
        var any = new HashSet<string>(StringComparer.Ordinal);
        foreach (var (_, members) in sets)
        {
            all.IntersectWith(members);
            any.UnionWith(members);
        }

        var pairs = new List<OverlapPair>();
        for (var i = 0; i < sets.Count; i++)
        {
            for (var j = i + 1; j < sets.Count; j++) { pairs.Add(new OverlapPair(sets[i].Audience.Id, sets[j].Audience.Id, sets[i].Members.Count(sets[j].Members.Contains))); }
        }

        return TypedResults.Ok(new OverlapAnswer([.. sets.Select(s => new OverlapSize(s.Audience.Id, s.Audience.Name, s.Members.Count))], all.Count, any.Count, pairs));
    }

    public static async Task<Results<Ok<ProfileSegmentsAnswer>, ProblemHttpResult>> ProfileSegmentsAsync(string id, ITesseraStore store, CancellationToken cancellationToken)
    {
        var live = store.Engine.SurvivorOf(id);
        if (live is null || store.Engine.Get(live) is not { } profile) { return Problems.NotFound($"id: no profile '{id}'"); }
        var history = new List<ChangeAnswer>();
        long after = 0;
        while (true)
        {
            var page = await store.GetAudienceChangesAsync(new AudienceChangeQuery(null, [profile.Id, .. profile.MergedFrom], after, 10_000), cancellationToken);
            history.AddRange(page.Select(ChangeAnswerOf));
            if (page.Count < 10_000) { break; }
            after = page[^1].Id;
        }

        return TypedResults.Ok(new ProfileSegmentsAnswer(profile.Id, store.Engine.AudiencesOf(profile.Id), history));
    }

    /// <summary>Checks name and definition; the definition's references must name existing audiences and must not loop back to <paramref name="id"/>.</summary>
    private static ProblemHttpResult? Check(AudienceBody body, string id, ITesseraStore store, out AudienceCondition? definition)
    {
        definition = null;
        if (string.IsNullOrWhiteSpace(body.Name)) { return Problems.Field("name", "is required"); }
        if (body.Name.Length > 200) { return Problems.Field("name", "must be at most 200 characters"); }
        if (store.Engine.Audiences.FirstOrDefault(a => a.Id != id && string.Equals(a.Name, body.Name.Trim(), StringComparison.Ordinal)) is { } clash)
        {
            return Problems.Field("name", $"'{body.Name.Trim()}' is already the name of {clash.Id}", StatusCodes.Status409Conflict, "Conflict");
        }

        if (body.Definition is not { } json || json.ValueKind is JsonValueKind.Undefined or JsonValueKind.Null) { return Problems.Field("definition", "is required"); }
        if (Parse(json, out definition) is { } invalid) { return invalid; }
        foreach (var referenced in AudienceDefinition.ReferencedSegments(definition!))
        {
            if (referenced == id) { return Problems.Field("definition", $"refers to this audience itself ('{id}')"); }
            if (store.Engine.GetAudience(referenced) is null) { return Problems.Field("definition", $"refers to audience '{referenced}', which does not exist"); }
            if (ReachableFrom(referenced, store).Contains(id)) { return Problems.Field("definition", $"refers to '{referenced}', which refers back to this audience: references must not loop"); }
        }

        return null;
    }

    /// <summary>
    /// Parses a definition given as JSON, or as a string in the text form (<c>trait plan = "pro" and ...</c>); every
    /// problem is listed, each under its path (<c>definition.and[0].op</c>, or <c>definition (line 1, column 12)</c>).
    /// </summary>
    public static ProblemHttpResult? Parse(JsonElement json, out AudienceCondition? definition)
    {
        IReadOnlyList<DefinitionError> errors;
        if (json.ValueKind == JsonValueKind.String)
        {
            definition = AudienceText.Parse(json.GetString()!, out errors);
            if (errors.Count == 0) { return null; }
            var text = errors.Select(e => (Field: $"definition ({e.Path})", e.Message)).ToList();
            var textProblem = Problems.Field(text[0].Field, text[0].Message);
            textProblem.ProblemDetails.Extensions["errors"] = text.GroupBy(e => e.Field).ToDictionary(g => g.Key, g => g.Select(e => e.Message).ToArray());
            return textProblem;
        }

        definition = AudienceDefinition.Parse(json, out errors);
        if (errors.Count == 0) { return null; }
        var first = errors[0];
        var problem = Problems.Field(Path(first), first.Message);
        problem.ProblemDetails.Extensions["errors"] = errors.GroupBy(Path).ToDictionary(g => g.Key, g => g.Select(e => e.Message).ToArray());
        return problem;
    }

    private static string Path(DefinitionError error) => error.Path.Length == 0 ? "definition" : $"definition.{error.Path}";

    private static HashSet<string> ReachableFrom(string id, ITesseraStore store)
    {
        var seen = new HashSet<string>(StringComparer.Ordinal);
        var pending = new Stack<string>([id]);
        while (pending.TryPop(out var next))
        {
            if (!seen.Add(next) || store.Engine.GetAudience(next) is not { } audience) { continue; }
            foreach (var r in AudienceDefinition.ReferencedSegments(audience.Definition)) { pending.Push(r); }
        }

        return seen;
    }

    private static AudienceAnswer Answer(Audience a, ITesseraStore store) =>
        new(a.Id, a.Name, a.Description, AudienceDefinition.ToJson(a.Definition), AudienceText.Format(a.Definition), store.Engine.MemberCount(a.Id), a.CreatedAt, a.UpdatedAt);

    private static ChangeAnswer ChangeAnswerOf(StoredAudienceChange c) =>
        new(c.Id, c.Change.AudienceId, c.Change.ProfileId, c.Change.Kind, c.Change.At, c.Change.Seq, c.Change.Reason);

    private static ProblemHttpResult NoSuch(string id) => Problems.NotFound($"id: no audience '{id}'");
}
