using System.Text.Json;
using Microsoft.AspNetCore.Http.HttpResults;
using Tessera.Core.Conditions;
using Tessera.Core.Profiles;
using Tessera.Server.Hosting;
using Tessera.Storage.Profiles;

namespace Tessera.Server.Management;

/// <summary>
/// <c>/api/computed-traits</c>: traits computed from events (count, sum, average, min, max, first, last, most
/// frequent, distinct count; with filters and a window). A new one is computed over history before it is answered.
/// </summary>
public static class ComputedTraitsApi
{
    public static RouteGroupBuilder MapComputedTraitsApi(this RouteGroupBuilder api)
    {
        api.MapGet("/computed-traits", List).WithName("ListComputedTraits");
        api.MapPost("/computed-traits", CreateAsync).WithName("CreateComputedTrait");
        api.MapGet("/computed-traits/{name}", Get).WithName("GetComputedTrait");
        api.MapDelete("/computed-traits/{name}", DeleteAsync).WithName("DeleteComputedTrait");
        return api;
    }

    public sealed record ComputedTraitAnswer(ComputedTraitDefinition Definition, string DefinedIn);

    /// <summary>The names of the computed traits the configuration file defines, read once at start-up.</summary>
    public sealed record ConfiguredNames(IReadOnlySet<string> Names);

    public static Ok<List<ComputedTraitAnswer>> List(IProfileStore store, ConfiguredNames configured) =>
        TypedResults.Ok(store.Engine.ComputedDefinitions.Select(d => new ComputedTraitAnswer(d, configured.Names.Contains(d.Name) ? "configuration" : "api")).ToList());

    public static Results<Ok<ComputedTraitAnswer>, ProblemHttpResult> Get(string name, IProfileStore store, ConfiguredNames configured) =>
        List(store, configured).Value!.FirstOrDefault(a => a.Definition.Name == name) is { } found ? TypedResults.Ok(found) : Problems.NotFound($"name: no computed trait '{name}'");

    public static async Task<Results<Created<ComputedTraitAnswer>, ProblemHttpResult>> CreateAsync(JsonElement body, IProfileStore store, ConfiguredNames configured, CancellationToken cancellationToken)
    {
        ComputedTraitDefinition? definition;
        try
        {
            definition = body.Deserialize<ComputedTraitDefinition>(ConditionJson.Options);
        }
        catch (JsonException e)
        {
            var field = e.Path is { Length: > 2 } path ? path.TrimStart('$', '.') : "body";
            return Problems.Field(field, $"cannot be read: {e.Message}");
        }

        if (definition is null) { return Problems.Field("body", "a computed trait definition is required"); }
        if (definition.Problem() is { } problem)
        {
            var colon = problem.IndexOf(':', StringComparison.Ordinal);
            return Problems.Field(problem[..colon], problem[(colon + 1)..].Trim());
        }

        if (configured.Names.Contains(definition.Name))
        {
            return Problems.Field("name", $"'{definition.Name}' is defined in the configuration file; change it there", StatusCodes.Status409Conflict, "Conflict");
        }

        await store.SaveComputedTraitAsync(definition, cancellationToken);
        return TypedResults.Created($"/api/computed-traits/{definition.Name}", new ComputedTraitAnswer(definition, "api"));
    }

    public static async Task<Results<NoContent, ProblemHttpResult>> DeleteAsync(string name, IProfileStore store, ConfiguredNames configured, CancellationToken cancellationToken)
    {
        if (configured.Names.Contains(name))
        {
            return Problems.Field("name", $"'{name}' is defined in the configuration file; remove it there", StatusCodes.Status409Conflict, "Conflict");
        }

        return await store.DeleteComputedTraitAsync(name, cancellationToken) ? TypedResults.NoContent() : Problems.NotFound($"name: no computed trait '{name}'");
    }
}
