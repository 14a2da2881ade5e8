using System.Security.Cryptography;
using System.Text;
using Tessera.Core.Activation;
using Tessera.Storage.Activation;

namespace Tessera.Server.Activation;

/// <summary>
/// Sends deliveries to a webhook as CONTRACT.md describes: a JSON POST whose raw body is signed with the
/// destination's secret (<c>X-Tessera-Signature: sha256=&lt;hex HMAC-SHA256&gt;</c>), carrying the delivery's
/// idempotency key in the body and in <c>Idempotency-Key</c>; with batching, the body is <c>{"batch": [...]}</c>.
/// One attempt is one run of <see cref="HttpDelivery"/>'s Polly pipeline (a timeout, quick retries of transient failures).
/// </summary>
public sealed class WebhookChannel
{
    public const string SignatureHeader = "X-Tessera-Signature";
    public const string IdempotencyHeader = "Idempotency-Key";

    /// <summary>Headers Tessera sets itself; a destination's own headers cannot replace them.</summary>
    public static readonly IReadOnlyList<string> ReservedHeaders = ["content-type", "content-length", "host", "x-tessera-signature", "idempotency-key", "transfer-encoding", "connection"];

    private readonly HttpDelivery _http;

    public WebhookChannel(HttpDelivery http) => _http = http;

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
        return await _http.PostJsonAsync(new Uri(settings.Url), body, request =>
        {
            foreach (var (name, value) in settings.Headers) { request.Headers.TryAddWithoutValidation(name, value); }
            request.Headers.TryAddWithoutValidation(SignatureHeader, signature);
            request.Headers.TryAddWithoutValidation(IdempotencyHeader, key);
        }, cancellationToken);
    }
}
