using Tessera.Server.Collection;
using Tessera.Server.Hosting;

namespace Tessera.Server.Management;

/// <summary>
/// Read-your-writes for <c>/api</c>: with the journal on, a 200 means "in the journal", and the store catches up a
/// moment later. An endpoint behind this filter first waits until the store holds every event acknowledged before
/// the request arrived (usually it already does), so a client that sent events and then reads sees them. Past
/// <see cref="TesseraOptions.ReadBarrierTimeout"/> it answers 503 with Retry-After instead of a stale answer.
/// Endpoints marked <see cref="ServedFromEngine"/> answer from the engine's memory (profiles, memberships, the
/// audience change log with its staged tail) and wait only until the engine has resolved those events, not for the
/// store's commit, which a DuckDB checkpoint can hold for seconds.
/// </summary>
public static class ReadBarrier
{
    private sealed class EngineState;

    private static readonly EngineState EngineMarker = new();

    /// <summary>Marks an endpoint whose answer comes from the engine (and staged changes), so it waits for the engine only.</summary>
    public static RouteHandlerBuilder ServedFromEngine(this RouteHandlerBuilder endpoint) => endpoint.WithMetadata(EngineMarker);

    public static async ValueTask<object?> WaitForIndexAsync(EndpointFilterInvocationContext context, EndpointFilterDelegate next)
    {
        var http = context.HttpContext;
        var indexer = http.RequestServices.GetRequiredService<JournalIndexer>();
        var options = http.RequestServices.GetRequiredService<TesseraOptions>();
        var engineOnly = http.GetEndpoint()?.Metadata.GetMetadata<EngineState>() is not null;
        var caughtUp = engineOnly
            ? indexer.WaitForAppliedAsync(options.ReadBarrierTimeout, http.RequestAborted)
            : indexer.WaitForAcknowledgedAsync(options.ReadBarrierTimeout, http.RequestAborted);
        if (!await caughtUp)
        {
            return Problems.Unavailable(http,
                $"The store has not yet caught up with the events acknowledged before this read ({indexer.Behind / 1e6:F1} MB of journal behind after " +
                $"{options.ReadBarrierTimeout.TotalSeconds:F1} s{(indexer.LastError is { } error ? $"; it reports: {error}" : "")}). Retry later.",
                retryAfterSeconds: 2);
        }

        return await next(context);
    }
}
