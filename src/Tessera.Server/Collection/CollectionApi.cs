using System.Text;
using System.Text.Json;
using Tessera.Core.Collection;
using Tessera.Server.Hosting;
using Tessera.Storage;

namespace Tessera.Server.Collection;

/// <summary>
/// Segment's HTTP Tracking API, drop-in: <c>/v1/{identify,track,page,screen,group,alias,batch,import}</c>, the
/// browser SDK's short paths (<c>/v1/i</c>, <c>/v1/t</c>, … <c>/v1/b</c>), and its settings fetch.
/// </summary>
public static class CollectionApi
{
    public const string CorsPolicy = "collection";

    private static readonly byte[] SuccessBody = """{"success":true}"""u8.ToArray();

    public static IEndpointRouteBuilder MapCollectionApi(this IEndpointRouteBuilder app)
    {
        var v1 = app.MapGroup("/v1").WithTags("Collection").RequireCors(CorsPolicy);
        foreach (var type in Enum.GetValues<MessageType>())
        {
            var name = type.Name();
            v1.MapPost($"/{name}", (HttpContext context, [AsParameters] CollectionServices services) => CollectAsync(context, type, services))
                .WithName($"Collect{type}");
            v1.MapPost($"/{name[0]}", (HttpContext context, [AsParameters] CollectionServices services) => CollectAsync(context, type, services))
                .ExcludeFromDescription();
        }

        v1.MapPost("/batch", CollectBatchAsync).WithName("CollectBatch");
        v1.MapPost("/import", CollectBatchAsync).WithName("CollectImport");
        v1.MapPost("/b", CollectBatchAsync).ExcludeFromDescription();
        v1.MapGet("/projects/{writeKey}/settings", GetSettingsAsync).WithName("GetSourceSettings");
        // The browser SDK may report its own metrics here; Tessera has no use for them.
        v1.MapPost("/m", () => TypedResults.Ok()).ExcludeFromDescription();
        return app;
    }

    public readonly record struct CollectionServices(EventWriter Writer, SourceRegistry Sources, TimeProvider Time);

    private static Task<IResult> CollectBatchAsync(HttpContext context, [AsParameters] CollectionServices services) =>
        CollectAsync(context, null, services);

    private static async Task<IResult> CollectAsync(HttpContext context, MessageType? type, CollectionServices services)
    {
        var receivedAt = services.Time.GetUtcNow();
        using var body = new CollectionBody();
        switch (await body.ReadAsync(context.Request, context.RequestAborted))
        {
            case CollectionBody.Outcome.TooLarge:
                return Problems.Field("body", $"the request body exceeds the limit of {CollectionLimits.MaxBatchBytes} bytes (500 KB) per request; send smaller batches",
                    StatusCodes.Status413PayloadTooLarge, "Request too large");
            case CollectionBody.Outcome.BadEncoding:
                return Problems.Field("Content-Encoding", "the body must be plain or gzip-compressed (Content-Encoding: gzip) and decompress cleanly",
                    StatusCodes.Status415UnsupportedMediaType, "Unsupported encoding");
            case CollectionBody.Outcome.Ok:
            default:
                break;
        }

        if (!body.TryParse(out var document, out var parseError)) { return Problems.Field("body", parseError!); }
        using (document)
        {
            var root = document!.RootElement;
            var (source, authProblem) = await AuthenticateAsync(context, root, services.Sources);
            if (authProblem is not null) { return authProblem; }

            // The events as bytes from here to the journal (EncodedEvents): each one's JSON copied once, no object per
            // event. Encoded they take their JSON's size and ~100-200 bytes of ids and times each.
            using var accepted = new EncodedEvents(body.Length + (body.Length / 3) + 256);
            if (type is { } single)
            {
                if (!MessageValidator.TryValidate(root, single, source!.Id, receivedAt, null, accepted, out var rejection))
                {
                    return Problems.Rejected(rejection!);
                }

                return await WriteAsync(context, services.Writer, accepted, []);
            }

            return await CollectManyAsync(context, root, source!.Id, receivedAt, services.Writer, accepted);
        }
    }

    private static async Task<IResult> CollectManyAsync(HttpContext context, JsonElement root, string sourceId, DateTimeOffset receivedAt, EventWriter writer, EncodedEvents accepted)
    {
        if (root.ValueKind != JsonValueKind.Object || !root.TryGetProperty("batch"u8, out var batch) || batch.ValueKind != JsonValueKind.Array)
        {
            return Problems.Field("batch", "is required: a JSON array of messages");
        }

        var count = batch.GetArrayLength();
        if (count > CollectionLimits.MaxBatchEvents)
        {
            return Problems.Field("batch", $"holds {count} messages; the limit is {CollectionLimits.MaxBatchEvents} messages per batch",
                StatusCodes.Status413PayloadTooLarge, "Batch too large");
        }

        DateTimeOffset? batchSentAt = null;
        if (root.TryGetProperty("sentAt"u8, out var sentAt) && sentAt.ValueKind != JsonValueKind.Null)
        {
            if (sentAt.ValueKind != JsonValueKind.String || !sentAt.TryGetDateTimeOffset(out var parsed))
            {
                return Problems.Field("sentAt", "must be an ISO-8601 date-time string");
            }

            batchSentAt = parsed.ToUniversalTime();
        }

        var rejected = new List<RejectedMessage>();
        var index = 0;
        foreach (var message in batch.EnumerateArray())
        {
            if (!MessageValidator.TryValidate(message, null, sourceId, receivedAt, batchSentAt, accepted, out var rejection))
            {
                var messageId = message.ValueKind == JsonValueKind.Object && message.TryGetProperty("messageId"u8, out var id) && id.ValueKind == JsonValueKind.String
                    ? id.GetString()
                    : null;
                rejected.Add(new RejectedMessage(index, messageId, rejection!.Under($"batch[{index}]")));
            }

            index++;
        }

        return await WriteAsync(context, writer, accepted, rejected);
    }

    private sealed record RejectedMessage(int Index, string? MessageId, Rejection Rejection);

    private static async Task<IResult> WriteAsync(HttpContext context, EventWriter writer, EncodedEvents accepted, List<RejectedMessage> rejected)
    {
        try
        {
            await writer.WriteAsync(accepted, context.RequestAborted);
        }
        catch (StoreUnavailableException e)
        {
            return Problems.Unavailable(context, $"nothing was stored: {e.Message} Retry later.", e.RetryAfterSeconds);
        }

        if (rejected.Count == 0) { return TypedResults.Bytes(SuccessBody, "application/json"); }

        // Good messages are kept; the answer says which ones were refused and why, field by field.
        var first = rejected[0].Rejection;
        return TypedResults.Problem(
            title: "Some messages were rejected",
            detail: $"{rejected.Count} of {rejected.Count + accepted.Count} messages were rejected and {accepted.Count} were stored; first: {first.Field}: {first.Reason}",
            statusCode: StatusCodes.Status400BadRequest,
            extensions: new Dictionary<string, object?>
            {
                ["field"] = first.Field,
                ["accepted"] = accepted.Count,
                ["rejected"] = rejected.Select(r => new { index = r.Index, messageId = r.MessageId, field = r.Rejection.Field, reason = r.Rejection.Reason }).ToArray(),
                ["errors"] = rejected.GroupBy(r => r.Rejection.Field).ToDictionary(g => g.Key, g => g.Select(r => r.Rejection.Reason).ToArray()),
            });
    }

    private static async Task<(Storage.Sources.Source? Source, IResult? Problem)> AuthenticateAsync(HttpContext context, JsonElement root, SourceRegistry sources)
    {
        var writeKey = WriteKeyFromHeader(context.Request);
        if (writeKey is null && root.ValueKind == JsonValueKind.Object && root.TryGetProperty("writeKey"u8, out var inBody) && inBody.ValueKind == JsonValueKind.String)
        {
            writeKey = inBody.GetString();
        }

        if (string.IsNullOrEmpty(writeKey))
        {
            return (null, Problems.Unauthorized("writeKey: no write key given; send it as the Basic auth user name or as \"writeKey\" in the body"));
        }

        var source = await sources.FindAsync(writeKey, context.RequestAborted);
        if (source is null) { return (null, Problems.Unauthorized("writeKey: this write key is not known to Tessera")); }
        if (source.IsRevoked) { return (null, Problems.Unauthorized($"writeKey: the write key of source '{source.Name}' was revoked")); }
        return (source, null);
    }

    private static string? WriteKeyFromHeader(HttpRequest request)
    {
        var header = request.Headers.Authorization.ToString();
        if (!header.StartsWith("Basic ", StringComparison.OrdinalIgnoreCase)) { return null; }
        try
        {
            var decoded = Encoding.UTF8.GetString(Convert.FromBase64String(header["Basic ".Length..].Trim()));
            var colon = decoded.IndexOf(':', StringComparison.Ordinal);
            return colon < 0 ? decoded : decoded[..colon];
        }
        catch (FormatException)
        {
            return null;
        }
    }

    private static async Task<IResult> GetSettingsAsync(string writeKey, HttpContext context, SourceRegistry sources)
    {
        var source = await sources.FindAsync(writeKey, context.RequestAborted);
        if (source is null || source.IsRevoked) { return Problems.NotFound("writeKey: no active source has this write key"); }

        // What the browser SDK fetches before anything else: it tells the SDK to send its events back here.
        var request = context.Request;
        return TypedResults.Json(new
        {
            integrations = new Dictionary<string, object>
            {
                ["Segment.io"] = new
                {
                    apiKey = writeKey,
                    apiHost = $"{request.Host}{request.PathBase}/v1",
                    protocol = request.Scheme,
                    unbundledIntegrations = Array.Empty<string>(),
                    addBundledMetadata = true,
                    maybeBundledConfigIds = new { },
                },
            },
            plan = new { track = new { __default = new { enabled = true, integrations = new { } } } },
            edgeFunction = new { },
            analyticsNextEnabled = true,
            middlewareSettings = new { },
            enabledMiddleware = new { },
            metrics = new { sampleRate = 0 },
            remotePlugins = Array.Empty<object>(),
        });
    }
}
