using Tessera.Server.Collection;
using Tessera.Storage;

namespace Tessera.Server.Hosting;

/// <summary><c>GET /health</c>: 200 only while the server accepts traffic and its store answers.</summary>
public static class HealthApi
{
    public static IEndpointRouteBuilder MapHealthApi(this IEndpointRouteBuilder app)
    {
        app.MapGet("/health", CheckAsync).WithName("Health").WithTags("Health");
        return app;
    }

    public static async Task<IResult> CheckAsync(ITesseraStore store, JournalIndexer indexer, IHostApplicationLifetime lifetime, HttpContext context)
    {
        if (lifetime.ApplicationStopping.IsCancellationRequested) { return Problems.Unavailable(context, "Tessera is shutting down."); }
        if (!await store.IsAvailableAsync(context.RequestAborted)) { return Problems.Unavailable(context, $"The {store.Kind} store does not answer.", 5); }
        if (indexer.Stopped) { return Problems.Unavailable(context, indexer.StoppedMessage, JournalIndexer.StoppedRetryAfterSeconds); }
        var journal = indexer.Enabled
            ? new JournalHealth(indexer.Journal.Directory, indexer.Journal.End, indexer.Indexed, indexer.Behind, indexer.Journal.SegmentCount, indexer.LastError)
            : null;
        return TypedResults.Ok(new HealthAnswer("ok", store.Kind, journal));
    }

    public sealed record HealthAnswer(string Status, string Store, JournalHealth? Journal);

    /// <summary>Where the journal stands: <c>behindBytes</c> of acknowledged events are not yet in the store.</summary>
    public sealed record JournalHealth(string Directory, long Position, long IndexedPosition, long BehindBytes, int Segments, string? IndexerError);
}
