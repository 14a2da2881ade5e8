using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using Microsoft.AspNetCore.Http.HttpResults;
using Tessera.Core.Journeys;
using Tessera.Server.Hosting;
using Tessera.Server.Journeys;
using Tessera.Storage;
using Tessera.Storage.Journeys;

namespace Tessera.Server.Management;

/// <summary>
/// <c>/api/journeys</c>: multi-step journeys (entry, waits, branches, sends, exits), enabling and pausing them,
/// who is at which step; <c>/api/profiles/{id}/journeys</c>: a profile's runs with each step's history.
/// </summary>
public static class JourneysApi
{
    public static RouteGroupBuilder MapJourneysApi(this RouteGroupBuilder api)
    {
        api.MapGet("/journeys", ListAsync).WithName("ListJourneys");
        api.MapPost("/journeys", CreateAsync).WithName("CreateJourney").WithSummary("Creates a journey, a draft unless status says active.");
        api.MapGet("/journeys/{id}", GetAsync).WithName("GetJourney");
        api.MapPut("/journeys/{id}", UpdateAsync).WithName("UpdateJourney").WithSummary("Replaces it; a changed definition is a new version, runs under way keep theirs.");
        api.MapDelete("/journeys/{id}", DeleteAsync).WithName("DeleteJourney").WithSummary("Deletes it; its active runs exit, positions and history stay.");
        api.MapPost("/journeys/{id}/enable", EnableAsync).WithName("EnableJourney").WithSummary("Profiles enter from now on; paused runs move again.");
        api.MapPost("/journeys/{id}/pause", PauseAsync).WithName("PauseJourney").WithSummary("Nobody enters or moves until it is enabled again.");
        api.MapGet("/journeys/{id}/positions", PositionsAsync).WithName("GetJourneyPositions").WithSummary("Runs, newest first (?step=&state=), with counts per step.");
        api.MapGet("/profiles/{id}/journeys", ProfileJourneysAsync).WithName("GetProfileJourneys").WithSummary("The profile's runs, each with its step history.");
        return api;
    }

    public sealed record JourneyAnswer(
        string Id, string Name, string? Description, string Status, int Version, JsonNode Entry, JsonNode Reentry, JsonNode Exit, JsonNode Steps,
        DateTimeOffset CreatedAt, DateTimeOffset UpdatedAt);

    public sealed record PositionAnswer(
        long Id, string JourneyId, string ProfileId, int Run, int Version, string Step, string State, bool Waiting, string? WaitingFor, DateTimeOffset? DueAt,
        DateTimeOffset EnteredAt, DateTimeOffset StepEnteredAt, DateTimeOffset UpdatedAt, DateTimeOffset? EndedAt, string? Reason, JsonNode? Entry);

    public sealed record StepCounts(long Active, long Completed, long Exited, IReadOnlyDictionary<string, long> ActiveByStep);

    public sealed record PositionsAnswer(IReadOnlyList<PositionAnswer> Items, string? NextCursor, StepCounts Counts);

    public sealed record HistoryAnswer(string Step, string Action, string? Detail, DateTimeOffset At);

    public sealed record RunAnswer(PositionAnswer Position, IReadOnlyList<HistoryAnswer> History);

    public sealed record ProfileJourneysAnswer(string ProfileId, IReadOnlyList<RunAnswer> Items);

    public static async Task<Ok<List<JourneyAnswer>>> ListAsync(ITesseraStore store, CancellationToken cancellationToken) =>
        TypedResults.Ok((await store.ListJourneysAsync(cancellationToken)).Select(j => Answer(j.Journey)).ToList());

    public static async Task<Results<Ok<JourneyAnswer>, ProblemHttpResult>> GetAsync(string id, ITesseraStore store, CancellationToken cancellationToken) =>
        await store.GetJourneyAsync(id, cancellationToken) is { } j ? TypedResults.Ok(Answer(j.Journey)) : NoSuch(id);

    public static async Task<Results<Created<JourneyAnswer>, ProblemHttpResult>> CreateAsync(
        JsonElement body, ITesseraStore store, JourneyService journeys, TimeProvider clock, CancellationToken cancellationToken)
    {
        var id = "jrn_" + Guid.CreateVersion7().ToString("N")[..20];
        var destinations = await store.ListDestinationsAsync(cancellationToken);
        if (JourneyRequest.Parse(body, id, null, store.Engine, destinations, clock.GetUtcNow(), out var journey) is { } problem) { return problem; }
        await store.SaveJourneyAsync(journey!, startEntries: journey!.Status == JourneyStatus.Active, cancellationToken);
        journeys.Wake();
        return TypedResults.Created($"/api/journeys/{id}", Answer(journey));
    }

    public static async Task<Results<Ok<JourneyAnswer>, ProblemHttpResult>> UpdateAsync(
        string id, JsonElement body, ITesseraStore store, JourneyService journeys, TimeProvider clock, CancellationToken cancellationToken)
    {
        if (await store.GetJourneyAsync(id, cancellationToken) is not { } existing) { return NoSuch(id); }
        var destinations = await store.ListDestinationsAsync(cancellationToken);
        if (JourneyRequest.Parse(body, id, existing.Journey, store.Engine, destinations, clock.GetUtcNow(), out var journey) is { } problem) { return problem; }
        await store.SaveJourneyAsync(journey!, startEntries: journey!.Status == JourneyStatus.Active && existing.Journey.Status != JourneyStatus.Active, cancellationToken);
        journeys.Wake();
        return TypedResults.Ok(Answer(journey));
    }

    public static async Task<Results<NoContent, ProblemHttpResult>> DeleteAsync(string id, ITesseraStore store, TimeProvider clock, CancellationToken cancellationToken) =>
        await store.DeleteJourneyAsync(id, "journey deleted", clock.GetUtcNow(), cancellationToken) ? TypedResults.NoContent() : NoSuch(id);

    public static Task<Results<Ok<JourneyAnswer>, ProblemHttpResult>> EnableAsync(string id, ITesseraStore store, JourneyService journeys, TimeProvider clock, CancellationToken cancellationToken) =>
        SetStatusAsync(id, JourneyStatus.Active, store, journeys, clock, cancellationToken);

    public static Task<Results<Ok<JourneyAnswer>, ProblemHttpResult>> PauseAsync(string id, ITesseraStore store, JourneyService journeys, TimeProvider clock, CancellationToken cancellationToken) =>
        SetStatusAsync(id, JourneyStatus.Paused, store, journeys, clock, cancellationToken);

    public static async Task<Results<Ok<PositionsAnswer>, ProblemHttpResult>> PositionsAsync(
        string id, string? step, string? state, int? limit, string? cursor, ITesseraStore store, CancellationToken cancellationToken)
    {
        if (await store.GetJourneyAsync(id, cancellationToken) is null) { return NoSuch(id); }
        if (state is not null && !PositionState.All.Contains(state)) { return Problems.Field("state", $"'{state}' is not one of {string.Join(", ", PositionState.All)}"); }
        if (limit is < 1 or > 1000) { return Problems.Field("limit", "must be between 1 and 1000"); }
        long? before = null;
        if (cursor is not null)
        {
            if (!long.TryParse(cursor, NumberStyles.None, CultureInfo.InvariantCulture, out var c)) { return Problems.Field("cursor", "is not a cursor this API gave"); }
            before = c;
        }

        var take = limit ?? 100;
        var page = await store.QueryPositionsAsync(new PositionQuery(JourneyId: id, StepId: step, State: state, Before: before, Limit: take), cancellationToken);
        var counts = await store.CountPositionsAsync(id, cancellationToken);
        var answer = new StepCounts(
            counts.Where(c => c.State == PositionState.Active).Sum(c => c.Count),
            counts.Where(c => c.State == PositionState.Completed).Sum(c => c.Count),
            counts.Where(c => c.State == PositionState.Exited).Sum(c => c.Count),
            counts.Where(c => c.State == PositionState.Active).ToDictionary(c => c.StepId, c => c.Count, StringComparer.Ordinal));
        var next = page.Count == take ? page[^1].Id.ToString(CultureInfo.InvariantCulture) : null;
        return TypedResults.Ok(new PositionsAnswer([.. page.Select(PositionOf)], next, answer));
    }

    public static async Task<Results<Ok<ProfileJourneysAnswer>, ProblemHttpResult>> ProfileJourneysAsync(string id, ITesseraStore store, CancellationToken cancellationToken)
    {
        var live = store.Engine.SurvivorOf(id);
        if (live is null || store.Engine.Get(live) is not { } profile) { return Problems.NotFound($"id: no profile '{id}'"); }
        var runs = await store.QueryPositionsAsync(new PositionQuery(ProfileIds: [profile.Id, .. profile.MergedFrom], Limit: 1000), cancellationToken);
        var history = (await store.JourneyHistoryAsync([.. runs.Select(r => r.Id)], cancellationToken)).ToLookup(h => h.PositionId);
        return TypedResults.Ok(new ProfileJourneysAnswer(profile.Id,
            [.. runs.Select(r => new RunAnswer(PositionOf(r), [.. history[r.Id].Select(h => new HistoryAnswer(h.StepId, h.Action, h.Detail, h.At))]))]));
    }

    private static async Task<Results<Ok<JourneyAnswer>, ProblemHttpResult>> SetStatusAsync(
        string id, string status, ITesseraStore store, JourneyService journeys, TimeProvider clock, CancellationToken cancellationToken)
    {
        if (await store.GetJourneyAsync(id, cancellationToken) is not { } existing) { return NoSuch(id); }
        var journey = existing.Journey;
        if (journey.Status != status)
        {
            journey = journey with { Status = status, UpdatedAt = clock.GetUtcNow() };
            await store.SaveJourneyAsync(journey, startEntries: status == JourneyStatus.Active, cancellationToken);
            journeys.Wake();
        }

        return TypedResults.Ok(Answer(journey));
    }

    private static JourneyAnswer Answer(Journey j)
    {
        var definition = JourneyParser.ToJson(j.Definition);
        return new JourneyAnswer(j.Id, j.Name, j.Description, j.Status, j.Version, definition["entry"]!.DeepClone(), definition["reentry"]!.DeepClone(),
            definition["exit"]!.DeepClone(), definition["steps"]!.DeepClone(), j.CreatedAt, j.UpdatedAt);
    }

    private static PositionAnswer PositionOf(JourneyPosition p) => new(
        p.Id, p.JourneyId, p.ProfileId, p.Run, p.Version, p.StepId, p.State, p.Waiting, p.WaitEvent, p.DueAt, p.EnteredAt, p.StepEnteredAt, p.UpdatedAt, p.EndedAt, p.Reason,
        JsonNode.Parse(p.Context));

    private static ProblemHttpResult NoSuch(string id) => Problems.NotFound($"id: no journey '{id}'");
}
