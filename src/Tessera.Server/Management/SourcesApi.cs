using System.Security.Cryptography;
using Microsoft.AspNetCore.Http.HttpResults;
using Tessera.Server.Collection;
using Tessera.Server.Hosting;
using Tessera.Storage.Sources;

namespace Tessera.Server.Management;

/// <summary><c>/api/sources</c>: one write key per source, several sources per workspace, revocation.</summary>
public static class SourcesApi
{
    public static RouteGroupBuilder MapSourcesApi(this RouteGroupBuilder api)
    {
        api.MapGet("/sources", ListAsync).WithName("ListSources");
        api.MapPost("/sources", CreateAsync).WithName("CreateSource");
        api.MapGet("/sources/{id}", GetAsync).WithName("GetSource");
        api.MapDelete("/sources/{id}", RevokeAsync).WithName("RevokeSource").WithSummary("Revokes the source's write key; its events stay.");
        return api;
    }

    public sealed record CreateSourceRequest(string? Name, string? Workspace, string? WriteKey);

    public static string NewWriteKey() => "wk_" + Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(16));

    public static async Task<Ok<IReadOnlyList<Source>>> ListAsync(ISourceStore store, CancellationToken cancellationToken) =>
        TypedResults.Ok(await store.ListSourcesAsync(cancellationToken));

    public static async Task<Results<Created<Source>, ProblemHttpResult>> CreateAsync(CreateSourceRequest request, ISourceStore store, CancellationToken cancellationToken)
    {
        if (string.IsNullOrWhiteSpace(request.Name)) { return Problems.Field("name", "is required"); }
        if (request.WriteKey is { } key && (key.Length < 8 || key.Any(char.IsWhiteSpace)))
        {
            return Problems.Field("writeKey", "must be at least 8 characters with no spaces (or leave it out to get a generated one)");
        }

        if (request.WriteKey is not null && await store.FindSourceByWriteKeyAsync(request.WriteKey, cancellationToken) is not null)
        {
            return Problems.Field("writeKey", "is already used by another source", StatusCodes.Status409Conflict, "Conflict");
        }

        var source = await store.CreateSourceAsync(request.Name.Trim(), request.Workspace ?? "default", request.WriteKey ?? NewWriteKey(), cancellationToken);
        return TypedResults.Created($"/api/sources/{source.Id}", source);
    }

    public static async Task<Results<Ok<Source>, ProblemHttpResult>> GetAsync(string id, ISourceStore store, CancellationToken cancellationToken) =>
        await store.GetSourceAsync(id, cancellationToken) is { } source ? TypedResults.Ok(source) : Problems.NotFound($"id: no source '{id}'");

    public static async Task<Results<Ok<Source>, ProblemHttpResult>> RevokeAsync(string id, ISourceStore store, SourceRegistry registry, CancellationToken cancellationToken)
    {
        if (!await store.RevokeSourceAsync(id, cancellationToken)) { return Problems.NotFound($"id: no source '{id}'"); }
        var source = (await store.GetSourceAsync(id, cancellationToken))!;
        registry.Forget(source.WriteKey);
        return TypedResults.Ok(source);
    }
}
