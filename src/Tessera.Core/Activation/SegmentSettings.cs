namespace Tessera.Core.Activation;

/// <summary>
/// Forwards messages in Segment's format to a Segment-compatible endpoint: <c>POST {Url}/v1/batch</c> with the
/// <see cref="WriteKey"/> as the user name of HTTP Basic auth (Segment's own API, RudderStack, another Tessera).
/// </summary>
/// <param name="Url">The API's base, such as <c>https://api.segment.io</c>; <c>/v1/batch</c> is added.</param>
/// <param name="WriteKey">The receiving source's write key: a secret, never read back.</param>
/// <param name="Batching">How many deliveries one request carries and how long a batch that is not full waits.</param>
public sealed record SegmentSettings(string Url, string WriteKey, BatchingSettings Batching)
{
    /// <summary>Where batches are posted.</summary>
    public Uri BatchUri() => new(new Uri(Url.EndsWith('/') ? Url : Url + "/"), "v1/batch");
}
