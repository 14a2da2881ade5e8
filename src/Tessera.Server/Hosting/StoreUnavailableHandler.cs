using Microsoft.AspNetCore.Diagnostics;
using Tessera.Storage;

namespace Tessera.Server.Hosting;

/// <summary>
/// Answers any request that met an unavailable store (a source lookup, a read in <c>/api</c>) with 503 and
/// Retry-After instead of a 500, so clients and load balancers retry rather than give up.
/// </summary>
public sealed class StoreUnavailableHandler : IExceptionHandler
{
    public async ValueTask<bool> TryHandleAsync(HttpContext httpContext, Exception exception, CancellationToken cancellationToken)
    {
        if (exception is not StoreUnavailableException unavailable) { return false; }
        var result = Problems.Unavailable(httpContext, $"The store is unavailable: {unavailable.Message} Retry later.", unavailable.RetryAfterSeconds);
        await result.ExecuteAsync(httpContext);
        return true;
    }
}
