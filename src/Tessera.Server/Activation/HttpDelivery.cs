using System.Net;
using System.Net.Http.Headers;
using Polly;
using Polly.Retry;
using Polly.Timeout;

namespace Tessera.Server.Activation;

/// <summary>
/// One attempt of an HTTP channel (webhooks, Segment forwarding): a JSON POST run through a Polly pipeline, a timeout
/// per request and a few quick retries (exponential, with jitter) of transient failures (connection errors, timeouts,
/// 408, 429, 5xx). 2xx is success; any other answer is the receiver refusing the request itself, not retried.
/// </summary>
public sealed class HttpDelivery
{
    private readonly HttpClient _http;
    private readonly ResiliencePipeline<HttpResponseMessage> _pipeline;

    public HttpDelivery(HttpClient http, ActivationOptions options)
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

    /// <summary>POSTs <paramref name="body"/> as JSON to <paramref name="url"/>; <paramref name="headers"/> adds the channel's own headers to each request.</summary>
    public async Task<SendResult> PostJsonAsync(Uri url, byte[] body, Action<HttpRequestMessage> headers, CancellationToken cancellationToken)
    {
        try
        {
            using var response = await _pipeline.ExecuteAsync(async token =>
            {
                using var request = new HttpRequestMessage(HttpMethod.Post, url) { Content = new ByteArrayContent(body) };
                request.Content.Headers.ContentType = new MediaTypeHeaderValue("application/json") { CharSet = "utf-8" };
                headers(request);
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
