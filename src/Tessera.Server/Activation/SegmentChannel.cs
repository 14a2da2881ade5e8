using System.Net.Http.Headers;
using System.Text;
using Tessera.Core.Activation;
using Tessera.Storage.Activation;

namespace Tessera.Server.Activation;

/// <summary>
/// Forwards deliveries to a Segment-compatible API: <c>POST {url}/v1/batch</c> with the write key as HTTP Basic
/// auth and every delivery's messages in one <c>{"batch": [...]}</c> body (see <see cref="SegmentMessages"/>).
/// A group larger than Segment's 500 KB batch limit goes out as several requests, each with its own outcome.
/// </summary>
public sealed class SegmentChannel(HttpDelivery http)
{
    /// <summary>Segment refuses batches over 500 KB; requests stay below, with room for the envelope.</summary>
    public const int MaxBatchBytes = 475 * 1024;

    public async Task<IReadOnlyList<SendResult>> SendAsync(Destination destination, IReadOnlyList<Delivery> deliveries, CancellationToken cancellationToken)
    {
        var settings = destination.Segment ?? throw new InvalidOperationException($"destination {destination.Id} has no Segment settings");
        var auth = new AuthenticationHeaderValue("Basic", Convert.ToBase64String(Encoding.UTF8.GetBytes(settings.WriteKey + ":")));
        var url = settings.BatchUri();
        var results = new SendResult[deliveries.Count];
        var start = 0;
        while (start < deliveries.Count)
        {
            var body = new StringBuilder("{\"batch\":[");
            var (end, bytes) = (start, body.Length + 2);
            while (end < deliveries.Count)
            {
                var messages = SegmentMessages.Messages(deliveries[end].Payload);
                var size = Encoding.UTF8.GetByteCount(messages) + 1;
                if (end > start && bytes + size > MaxBatchBytes) { break; }
                if (end > start) { body.Append(','); }
                body.Append(messages);
                bytes += size;
                end++;
            }

            body.Append("]}");
            var result = await http.PostJsonAsync(url, Encoding.UTF8.GetBytes(body.ToString()), request => request.Headers.Authorization = auth, cancellationToken);
            for (var i = start; i < end; i++) { results[i] = result; }
            start = end;
        }

        return results;
    }
}
