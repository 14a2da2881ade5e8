using System.Text.Json;
using Microsoft.AspNetCore.Http.HttpResults;
using Tessera.Core.Activation;
using Tessera.Server.Hosting;

namespace Tessera.Server.Activation;

public static partial class DestinationRequest
{
    /// <summary>The batching of a Segment destination when the request says nothing: on, up to 100 deliveries a request, 500 ms.</summary>
    public static readonly BatchingSettings SegmentBatching = new(100, 500);

    /// <summary>
    /// <c>{"url", "writeKey", "batching"}</c>. <c>url</c> is the API's base (<c>https://api.segment.io</c>); a URL
    /// ending in <c>/v1/batch</c> is taken as that base. On PUT a <c>writeKey</c> left out keeps the stored one.
    /// </summary>
    private static ProblemHttpResult? ParseSegment(JsonElement body, SegmentSettings? existing, out SegmentSettings? forward)
    {
        forward = null;
        if (HttpUrl(body, "is required: the base of a Segment-compatible API, such as https://api.segment.io", out var uri) is { } urlProblem) { return urlProblem; }
        if (!string.IsNullOrEmpty(uri.Query) || !string.IsNullOrEmpty(uri.Fragment)) { return Problems.Field("url", "must be the API's base, without a query or fragment"); }
        var path = uri.AbsolutePath.TrimEnd('/');
        if (path.EndsWith("/v1/batch", StringComparison.OrdinalIgnoreCase)) { path = path[..^"/v1/batch".Length]; }
        var baseUrl = $"{uri.Scheme}://{uri.Authority}{path}";

        if (String(body, "writeKey", out var writeKey) is { } keyProblem) { return keyProblem; }
        writeKey ??= existing?.WriteKey;
        if (string.IsNullOrEmpty(writeKey)) { return Problems.Field("writeKey", "is required: the write key of the receiving source (sent as HTTP Basic auth)"); }
        if (writeKey.Length > 500 || writeKey.Any(ch => char.IsWhiteSpace(ch) || char.IsControl(ch) || ch == ':'))
        {
            return Problems.Field("writeKey", "must be a write key: at most 500 characters, without spaces, control characters or ':'");
        }

        if (Batching(body, out var batching, maxSize: 2_500) is { } batchingProblem) { return batchingProblem; }
        var off = body.TryGetProperty("batching", out var b) && (b.ValueKind == JsonValueKind.False || (b.ValueKind == JsonValueKind.Object && batching is null));
        forward = new SegmentSettings(baseUrl, writeKey, off ? new BatchingSettings(1, 0) : batching ?? SegmentBatching);
        return null;
    }
}
