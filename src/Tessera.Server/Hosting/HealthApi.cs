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

    public static async Task<IResult> CheckAsync(ITesseraStore store, IHostApplicationLifetime lifetime, HttpContext context)
    {
        if (lifetime.ApplicationStopping.IsCancellationRequested) { return Problems.Unavailable(context, "Tessera is shutting down."); }
        if (!await store.IsAvailableAsync(context.RequestAborted)) { return Problems.Unavailable(context, $"The {store.Kind} store does not answer.", 5); }
        return TypedResults.Ok(new { status = "ok", store = store.Kind });
    }
}
