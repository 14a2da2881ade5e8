using System.Text.Json.Nodes;
using Microsoft.AspNetCore.Http.HttpResults;
using Tessera.Core.Identity;
using Tessera.Core.Profiles;
using Tessera.Server.Hosting;
using Tessera.Storage.Events;
using Tessera.Storage.Profiles;

namespace Tessera.Server.Management;

/// <summary>
/// <c>/api/profiles</c>: a profile by identifier or id (a merged-away id answers with the survivor, listing it in
/// <c>mergedFrom</c>), its events, its identifiers with where each came from, its merges and why, its trait history.
/// </summary>
public static class ProfilesApi
{
    public static RouteGroupBuilder MapProfilesApi(this RouteGroupBuilder api)
    {
        api.MapGet("/profiles", FindByIdentifier).WithName("FindProfileByIdentifier").WithSummary("The profile that owns ?identifier=TYPE:VALUE.").ServedFromEngine();
        api.MapGet("/profiles/{id}", GetProfile).WithName("GetProfile").ServedFromEngine();
        api.MapGet("/profiles/{id}/events", GetEventsAsync).WithName("GetProfileEvents");
        api.MapGet("/profiles/{id}/identities", GetIdentitiesAsync).WithName("GetProfileIdentities");
        api.MapGet("/profiles/{id}/merges", GetMergesAsync).WithName("GetProfileMerges").WithSummary("Why these records are one person.");
        api.MapGet("/profiles/{id}/traits/history", GetTraitHistoryAsync).WithName("GetProfileTraitHistory");
        api.MapPost("/profiles/{id}/unmerge", UnmergeAsync).WithName("Unmerge")
            .WithSummary("Split an identifier off this profile and rebuild both from the event log, as if the merge had never happened.");
        api.MapGet("/profiles/{id}/decisions", GetDecisionsAsync).WithName("GetProfileDecisions")
            .WithSummary("Identifiers seen on this profile's messages but not linked: blocked, unparseable, or over a limit.");
        return api;
    }

    public sealed record ProfileAnswer(
        string Id, DateTimeOffset CreatedAt, IReadOnlyDictionary<string, JsonNode?> Traits, IReadOnlyList<IdentifierAnswer> Identifiers,
        IReadOnlyDictionary<string, JsonNode?> Computed, IReadOnlyList<string> Segments, IReadOnlyList<string> MergedFrom);

    public sealed record IdentifierAnswer(string Type, string Value);

    public static Results<Ok<ProfileAnswer>, ProblemHttpResult> FindByIdentifier(string? identifier, IProfileStore store)
    {
        if (!TryNormalize(store.Engine.IdentityRules, identifier, out var parsed, out var problem)) { return problem!; }
        var id = store.Engine.FindByIdentifier(parsed);
        return id is not null && store.Engine.Get(id) is { } profile
            ? TypedResults.Ok(Answer(profile, store.Engine.AudiencesOf(profile.Id)))
            : Problems.NotFound($"identifier: no profile owns {parsed}");
    }

    public static Results<Ok<ProfileAnswer>, ProblemHttpResult> GetProfile(string id, IProfileStore store) =>
        Live(store.Engine, id) is { } profile ? TypedResults.Ok(Answer(profile, store.Engine.AudiencesOf(profile.Id))) : Problems.NotFound($"id: no profile '{id}'");

    public static async Task<Results<Ok<EventsApi.EventListAnswer>, ProblemHttpResult>> GetEventsAsync(
        string id, int? limit, string? cursor, string? type, string? @event, IProfileStore store, IEventStore events, CancellationToken cancellationToken)
    {
        if (Live(store.Engine, id) is not { } profile) { return Problems.NotFound($"id: no profile '{id}'"); }
        return await EventsApi.ListAsync(new EventsApi.EventListQuery(limit, cursor, type, @event, null, null, null, null), [profile.Id, .. profile.MergedFrom], events, cancellationToken);
    }

    public sealed record IdentityAnswer(string Type, string Value, DateTimeOffset LinkedAt, string Cause);

    public static async Task<Results<Ok<IReadOnlyList<IdentityAnswer>>, ProblemHttpResult>> GetIdentitiesAsync(string id, IProfileStore store, CancellationToken cancellationToken)
    {
        if (Live(store.Engine, id) is not { } profile) { return Problems.NotFound($"id: no profile '{id}'"); }
        var log = await store.GetIdentityChangesAsync([profile.Id, .. profile.MergedFrom], cancellationToken);
        var linked = log.Where(c => c.Kind == IdentityChangeKind.Linked).ToDictionary(c => c.Identifier!.Value);
        IReadOnlyList<IdentityAnswer> answer = profile.Identifiers
            .Select(i => linked.TryGetValue(i, out var c) ? new IdentityAnswer(i.Type, i.Value, c.At, c.Cause) : new IdentityAnswer(i.Type, i.Value, profile.CreatedAt, "unknown"))
            .ToList();
        return TypedResults.Ok(answer);
    }

    public sealed record MergeAnswer(string Survivor, string Merged, DateTimeOffset At, long Seq, string Cause, IReadOnlyList<string> Identifiers, string Rule);

    public static async Task<Results<Ok<IReadOnlyList<MergeAnswer>>, ProblemHttpResult>> GetMergesAsync(string id, IProfileStore store, CancellationToken cancellationToken)
    {
        if (Live(store.Engine, id) is not { } profile) { return Problems.NotFound($"id: no profile '{id}'"); }
        var log = await store.GetIdentityChangesAsync([profile.Id, .. profile.MergedFrom], cancellationToken);
        IReadOnlyList<MergeAnswer> merges = log
            .Where(c => c.Kind == IdentityChangeKind.Merged)
            .Select(c => new MergeAnswer(c.ProfileId!, c.OtherProfileId!, c.At, c.Seq, c.Cause, c.Identifiers.Select(i => i.ToString()).ToList(), c.Detail ?? ""))
            .ToList();
        return TypedResults.Ok(merges);
    }

    public sealed record UnmergeRequest(string? Identifier);

    public sealed record UnmergeAnswer(ProfileAnswer SplitOff, ProfileAnswer Remaining, int ProfilesSplitting, int IdentifiersMoved);

    public static async Task<Results<Ok<UnmergeAnswer>, ProblemHttpResult>> UnmergeAsync(string id, UnmergeRequest? request, IProfileStore store, TimeProvider time, CancellationToken cancellationToken)
    {
        if (Live(store.Engine, id) is not { } profile) { return Problems.NotFound($"id: no profile '{id}'"); }
        if (!TryNormalize(store.Engine.IdentityRules, request?.Identifier, out var identifier, out var problem)) { return problem!; }
        if (!profile.Identifiers.Contains(identifier))
        {
            return Problems.Field("identifier", $"{identifier} is not an identifier of profile {profile.Id}", StatusCodes.Status409Conflict, "Conflict");
        }

        var others = profile.Identifiers.Where(i => i != identifier).ToList();
        if (others.Count == 0) { return Problems.Field("identifier", $"{identifier} is the profile's only identifier; there is nothing to split it from"); }

        var separation = new IdentitySeparation(identifier, others, time.GetUtcNow(), $"unmerged from {profile.Id} through the API");
        var fresh = store.Engine.Fresh(separations: [.. store.Engine.Separations, separation]);
        var comparison = await store.ReresolveAsync(fresh, apply: true, separation, cancellationToken);

        var splitOff = store.Engine.FindByIdentifier(identifier) is { } a ? store.Engine.Get(a) : null;
        var remaining = Live(store.Engine, profile.Id) ?? (store.Engine.FindByIdentifier(others[0]) is { } b ? store.Engine.Get(b) : null);
        if (splitOff is null || remaining is null) { return Problems.Field("identifier", "the rebuild left no profile for one side of the split", StatusCodes.Status500InternalServerError, "Unmerge incomplete"); }
        return TypedResults.Ok(new UnmergeAnswer(Answer(splitOff, store.Engine.AudiencesOf(splitOff.Id)), Answer(remaining, store.Engine.AudiencesOf(remaining.Id)), comparison.Splitting, comparison.IdentifiersMoved));
    }

    private static bool TryNormalize(IdentityRules rules, string? text, out Identifier identifier, out ProblemHttpResult? problem)
    {
        problem = null;
        if (!Identifier.TryParse(text, out identifier))
        {
            problem = Problems.Field("identifier", "is required as TYPE:VALUE, e.g. email:ann@example.com");
            return false;
        }

        var rule = rules.Find(identifier.Type);
        if (rule is null)
        {
            problem = Problems.Field("identifier", $"type '{identifier.Type}' is not configured; known types: {string.Join(", ", rules.Types.Select(t => t.Type))}");
            return false;
        }

        // Accept the value as people write it: 'email:Ann@Example.com ' means email:ann@example.com.
        if (!IdentifierNormalizer.TryNormalize(identifier.Value, rule.Normalize, rules.DefaultRegion, out var value, out var reason))
        {
            problem = Problems.Field("identifier", $"'{identifier.Value}' is not a valid {identifier.Type}: {reason}");
            return false;
        }

        identifier = identifier with { Value = value };
        return true;
    }

    public sealed record DecisionAnswer(string Kind, string Type, string Value, DateTimeOffset At, long Seq, string Cause, string Reason);

    public static async Task<Results<Ok<IReadOnlyList<DecisionAnswer>>, ProblemHttpResult>> GetDecisionsAsync(string id, IProfileStore store, CancellationToken cancellationToken)
    {
        if (Live(store.Engine, id) is not { } profile) { return Problems.NotFound($"id: no profile '{id}'"); }
        var log = await store.GetIdentityChangesAsync([profile.Id, .. profile.MergedFrom], cancellationToken);
        IReadOnlyList<DecisionAnswer> decisions = log
            .Where(c => c.Kind is IdentityChangeKind.Dropped or IdentityChangeKind.Rejected)
            .Select(c => new DecisionAnswer(c.Kind == IdentityChangeKind.Dropped ? "dropped" : "rejected", c.Identifier!.Value.Type, c.Identifier.Value.Value, c.At, c.Seq, c.Cause, c.Detail ?? ""))
            .ToList();
        return TypedResults.Ok(decisions);
    }

    public sealed record TraitHistoryAnswer(JsonNode? Value, DateTimeOffset At, long Seq, string SourceId);

    public static async Task<Results<Ok<Dictionary<string, List<TraitHistoryAnswer>>>, ProblemHttpResult>> GetTraitHistoryAsync(string id, IProfileStore store, CancellationToken cancellationToken)
    {
        if (Live(store.Engine, id) is not { } profile) { return Problems.NotFound($"id: no profile '{id}'"); }
        var history = await store.GetTraitHistoryAsync([profile.Id, .. profile.MergedFrom], cancellationToken);
        return TypedResults.Ok(history
            .GroupBy(t => t.Name, StringComparer.Ordinal)
            .ToDictionary(g => g.Key, g => g.Select(t => new TraitHistoryAnswer(t.Value.Value, t.Value.At, t.Value.Seq, t.Value.SourceId)).ToList(), StringComparer.Ordinal));
    }

    /// <summary>The ids events of this profile were stored under: the live id and every id merged into it.</summary>
    public static IReadOnlyList<string> StoredIdsOf(ProfileEngine engine, string id) =>
        Live(engine, id) is { } profile ? [profile.Id, .. profile.MergedFrom] : [id];

    private static ProfileView? Live(ProfileEngine engine, string id) => engine.SurvivorOf(id) is { } live ? engine.Get(live) : null;

    private static ProfileAnswer Answer(ProfileView p, IReadOnlyList<string> segments) => new(
        p.Id,
        p.CreatedAt,
        p.Traits.ToDictionary(t => t.Key, t => t.Value.Value?.DeepClone(), StringComparer.Ordinal),
        p.Identifiers.Select(i => new IdentifierAnswer(i.Type, i.Value)).ToList(),
        p.Computed.ToDictionary(c => c.Key, c => c.Value?.DeepClone(), StringComparer.Ordinal),
        segments,
        p.MergedFrom);
}
