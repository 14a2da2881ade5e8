using System.Text.Json;
using Microsoft.AspNetCore.Http.HttpResults;
using Tessera.Core.Identity;
using Tessera.Server.Hosting;
using Tessera.Storage.Profiles;

namespace Tessera.Server.Management;

/// <summary>
/// <c>/api/identity</c>: the rules in force, and re-resolving the whole event log under them (or, as a dry run,
/// under candidate rules) with a report of how many profiles would merge and split.
/// </summary>
public static class IdentityApi
{
    public static RouteGroupBuilder MapIdentityApi(this RouteGroupBuilder api)
    {
        api.MapGet("/identity/rules", GetRules).WithName("GetIdentityRules");
        api.MapPost("/identity/reresolve", ReresolveAsync).WithName("Reresolve")
            .WithSummary("Rebuild every profile from the event log; dryRun (default true) only reports what would change.");
        return api;
    }

    public static Ok<IdentityRules> GetRules(IProfileStore store) => TypedResults.Ok(store.Engine.IdentityRules);

    public sealed record ReresolveRequest(bool? DryRun, JsonElement? Rules);

    public sealed record ReresolveAnswer(bool DryRun, int ProfilesBefore, int ProfilesAfter, int ProfilesMerging, int ProfilesSplitting, int IdentifiersMoved, IReadOnlyList<string> Examples, double ElapsedMs);

    public static async Task<Results<Ok<ReresolveAnswer>, ProblemHttpResult>> ReresolveAsync(ReresolveRequest? request, IProfileStore store, CancellationToken cancellationToken)
    {
        var dryRun = request?.DryRun ?? true;
        IdentityRules? candidate = null;
        if (request?.Rules is { ValueKind: JsonValueKind.Object } rules)
        {
            if (!dryRun)
            {
                return Problems.Field("rules", "candidate rules can only be tried in a dry run; to apply them, put them in the --identity-rules file and restart, then re-resolve");
            }

            try
            {
                candidate = IdentityRules.Parse(rules.GetRawText());
            }
            catch (FormatException e)
            {
                return Problems.Field("rules", e.Message);
            }
        }

        var started = TimeProvider.System.GetTimestamp();
        var comparison = await store.ReresolveAsync(store.Engine.Fresh(candidate), apply: !dryRun, addSeparation: null, cancellationToken);
        return TypedResults.Ok(new ReresolveAnswer(dryRun, comparison.ProfilesBefore, comparison.ProfilesAfter, comparison.Merging, comparison.Splitting,
            comparison.IdentifiersMoved, comparison.Examples, TimeProvider.System.GetElapsedTime(started).TotalMilliseconds));
    }
}
