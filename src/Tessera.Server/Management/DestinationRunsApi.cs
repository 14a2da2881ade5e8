using Microsoft.AspNetCore.Http.HttpResults;
using Tessera.Core.Activation;
using Tessera.Server.Activation;
using Tessera.Server.Hosting;
using Tessera.Storage;

namespace Tessera.Server.Management;

/// <summary><c>POST /api/destinations/{id}/run</c>: a file destination's export, now, besides its schedule.</summary>
public static class DestinationRunsApi
{
    /// <summary>
    /// Queues a run (202 with its delivery, pending): it starts within a second, like any due delivery, and its
    /// outcome (files, rows, bytes, duration, or the error) is in the destination's delivery log.
    /// </summary>
    public static async Task<Results<Accepted<DestinationsApi.DeliveryAnswer>, ProblemHttpResult>> RunAsync(string id, ITesseraStore store, TimeProvider clock, CancellationToken cancellationToken)
    {
        if (await store.GetDestinationAsync(id, cancellationToken) is not { } stored) { return Problems.NotFound($"id: no destination '{id}'"); }
        if (stored.Destination.Type != DestinationTypes.File)
        {
            return Problems.Field("type", $"destination {id} is a {stored.Destination.Type} destination; only file destinations run on demand", StatusCodes.Status409Conflict, "Conflict");
        }

        var now = clock.GetUtcNow();
        var run = await store.AddRunAsync(FileExportScheduler.Run(id, now, "api", now), cancellationToken);
        if (run is null) { return Problems.Field("id", $"a run of {id} at this instant is queued already", StatusCodes.Status409Conflict, "Conflict"); }
        return TypedResults.Accepted($"/api/destinations/{id}/deliveries", DestinationsApi.DeliveryAnswerOf(run));
    }
}
