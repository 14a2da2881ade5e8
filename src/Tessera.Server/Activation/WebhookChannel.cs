using System.Net;
using System.Net.Http.Headers;
using System.Security.Cryptography;
using System.Text;
using Polly;
using Polly.Retry;
using Polly.Timeout;
using Tessera.Core.Activation;
using Tessera.Storage.Activation;

namespace Tessera.Server.Activation;

/// <summary>
/// Sends deliveries to a webhook as CONTRACT.md describes: a JSON POST whose raw body is signed with the
/// destination's secret (<c>X-Tessera-Signature: sha256=&lt;hex HMAC-SHA256&gt;</c>), carrying the delivery's
/// idempotency key in the body and in <c>Idempotency-Key</c>; with batching, the body is <c>{"batch": [...]}</c>.
/// One attempt is one run of a Polly pipeline: a timeout per request and a few quick retries (exponential, with
/// jitter) of transient failures (connection errors, timeouts, 408, 429, 5xx). 2xx is success; any other 4xx is
/// the receiver refusing the delivery itself, which is not retried.
/// </summary>
public sealed class WebhookChannel
{
    public const string SignatureHeader = "X-Tessera-Signature";
    public const string IdempotencyHeader = "Idempotency-Key";

    /// <summary>Headers Tessera sets itself; a destination's own headers cannot replace them.</summary>
    public static readonly IReadOnlyList<string> ReservedHeaders = ["content-type", "content-length", "host", "x-tessera-signature", "idempotency-key", "transfer-encoding", "connection"];

    private readonly HttpClient _http;
    private readonly ResiliencePipeline<HttpResponseMessage> _pipeline;

    public WebhookChannel(HttpClient http, ActivationOptions options)
    {
        _http = http;
        var builder = new ResiliencePipelineBuilder<HttpResponseMessage>();
        if (options.QuickRetries > 0)
        {
            builder.AddRetry(new RetryStrategyOptions<HttpResponseMessage>
            {
                MaxRetryAttempts = options.QuickRetries,
                Delay = options.QuickRetryDelay,
                BackoffType = DelayBackoffType.Exponential,
                UseJitter = true,
                ShouldHandle = new PredicateBuilder<HttpResponseMessage>()
                    .Handle<HttpRequestException>()
                    .Handle<TimeoutRejectedException>()
                    .HandleResult(r => IsTransient(r.StatusCode)),
                OnRetry = args =>
                {
                    args.Outcome.Result?.Dispose();
                    return default;
                },
            });
        }

        _pipeline = builder.AddTimeout(options.RequestTimeout).Build();
    }

    /// <summary><c>sha256=</c> and the lower-case hex HMAC-SHA256 of <paramref name="body"/> keyed with <paramref name="secret"/>.</summary>
    public static string Sign(ReadOnlySpan<byte> body, string secret) => "sha256=" + Convert.ToHexStringLower(HMACSHA256.HashData(Encoding.UTF8.GetBytes(secret), body));

    /// <summary>The request body: the one payload as it is, or every payload in <c>{"batch": [...]}</c>.</summary>
    public static byte[] Body(WebhookSettings settings, IReadOnlyList<Delivery> deliveries) =>
        settings.Batching is null && deliveries.Count == 1
            ? Encoding.UTF8.GetBytes(deliveries[0].Payload)
            : Encoding.UTF8.GetBytes("{\"batch\":[" + string.Join(",", deliveries.Select(d => d.Payload)) + "]}");

    public async Task<SendResult> SendAsync(Destination destination, IReadOnlyList<Delivery> deliveries, CancellationToken cancellationToken)
    {
        var settings = destination.Webhook ?? throw new InvalidOperationException($"destination {destination.Id} has no webhook settings");
        var body = Body(settings, deliveries);
        var signature = Sign(body, settings.Secret);
        // A batch's key names its members, so the same batch sent again carries the same key.
        var key = deliveries.Count == 1
            ? deliveries[0].IdempotencyKey
            : "batch_" + Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(string.Join("\n", deliveries.Select(d => d.IdempotencyKey)))), 0, 16);
        try
        {
            using var response = await _pipeline.ExecuteAsync(async token =>
            {
                using var request = new HttpRequestMessage(HttpMethod.Post, settings.Url) { Content = new ByteArrayContent(body) };
                foreach (var (name, value) in settings.Headers) { request.Headers.TryAddWithoutValidation(name, value); }
                request.Content.Headers.ContentType = new MediaTypeHeaderValue("application/json") { CharSet = "utf-8" };
                request.Headers.TryAddWithoutValidation(SignatureHeader, signature);
                request.Headers.TryAddWithoutValidation(IdempotencyHeader, key);
                return await _http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, token);
            }, cancellationToken);
            if (response.IsSuccessStatusCode) { return SendResult.Ok; }
            var text = await ReadSomeAsync(response, cancellationToken);
            var code = (int)response.StatusCode;
            return IsTransient(response.StatusCode)
                ? SendResult.Failed($"HTTP {code} {response.ReasonPhrase}{text}")
                : SendResult.Failed($"HTTP {code} {response.ReasonPhrase}{text} (the receiver refused it; not retried)", permanent: true);
        }
        catch (HttpRequestException e)
        {
            return SendResult.Failed(e.HttpRequestError == HttpRequestError.Unknown ? e.Message : $"{e.HttpRequestError}: {e.Message}");
        }
        catch (TimeoutRejectedException e)
        {
            return SendResult.Failed($"no answer within {e.Timeout.TotalSeconds:0.#} s");
        }
    }

    private static bool IsTransient(HttpStatusCode status) =>
        (int)status >= 500 || status is HttpStatusCode.RequestTimeout or HttpStatusCode.TooManyRequests;

    private static async Task<string> ReadSomeAsync(HttpResponseMessage response, CancellationToken cancellationToken)
    {
        try
        {
            var text = await response.Content.ReadAsStringAsync(cancellationToken);
            text = text.Trim();
            return text.Length == 0 ? "" : ": " + (text.Length > 200 ? text[..200] + "…" : text);
        }
        catch (Exception e) when (e is HttpRequestException or IOException)
        {
            return "";
        }
    }
}
