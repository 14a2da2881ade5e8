using Microsoft.AspNetCore.Http.HttpResults;
using Tessera.Core.Collection;

namespace Tessera.Server.Hosting;

/// <summary>RFC 7807 answers. Every one names the field (or limit, or header) at fault in <c>detail</c> and in <c>field</c>.</summary>
public static class Problems
{
    public static ProblemHttpResult Field(string field, string reason, int status = StatusCodes.Status400BadRequest, string? title = null) =>
        TypedResults.Problem(
            detail: field.Length == 0 ? reason : $"{field}: {reason}",
            statusCode: status,
            title: title ?? "Invalid request",
            extensions: new Dictionary<string, object?>
            {
                ["field"] = field,
                ["errors"] = new Dictionary<string, string[]> { [field] = [reason] },
            });

    public static ProblemHttpResult Rejected(Rejection rejection) => Field(rejection.Field, rejection.Reason);

    public static ProblemHttpResult Unauthorized(string reason) =>
        TypedResults.Problem(detail: reason, statusCode: StatusCodes.Status401Unauthorized, title: "Unauthorized");

    public static ProblemHttpResult NotFound(string what) =>
        TypedResults.Problem(detail: what, statusCode: StatusCodes.Status404NotFound, title: "Not found");

    public static ProblemHttpResult Unavailable(HttpContext context, string reason, int retryAfterSeconds = 1)
    {
        context.Response.Headers.RetryAfter = retryAfterSeconds.ToString();
        return TypedResults.Problem(detail: reason, statusCode: StatusCodes.Status503ServiceUnavailable, title: "Service unavailable");
    }
}
