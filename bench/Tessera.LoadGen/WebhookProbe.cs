using System.Diagnostics;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;

namespace Tessera.LoadGen;

/// <summary>
/// Issue 6's latency: while the load runs, every <see cref="Interval"/> one event makes a new profile enter a
/// real-time audience that a webhook destination subscribes to; the time runs from just before the event is
/// sent to the moment the webhook request arrives at <see cref="WebhookReceiver"/> (in this process, on the same
/// clock). Probes are sent without waiting for each other, so a slow one does not delay the next.
/// </summary>
internal sealed class WebhookProbe(LoadOptions options, string url, WebhookReceiver receiver)
{
    private static readonly TimeSpan Interval = TimeSpan.FromMilliseconds(50);
    private readonly List<(string User, long Sent)> _sent = [];
    private readonly System.Collections.Concurrent.ConcurrentDictionary<string, long> _acked = new(StringComparer.Ordinal);

    public long Acknowledged { get; private set; }

    public List<double> LatenciesMs { get; } = [];

    /// <summary>From the 200 of the event's request to the webhook's arrival: activation's own share (the commit precedes the 200).</summary>
    public List<double> AfterAckMs { get; } = [];

    public int Missing { get; private set; }

    /// <summary>Creates the audience and the destination; returns the destination's id.</summary>
    public async Task<string> SetUpAsync(HttpClient admin)
    {
        using var segment = await admin.PostAsync(new Uri(url + "/api/segments"), Json("""{"name":"Webhook probe: qualified in the last hour","definition":{"event":"Webhook Probe","within":"1h"}}"""));
        segment.EnsureSuccessStatusCode();
        var segmentId = JsonDocument.Parse(await segment.Content.ReadAsStringAsync()).RootElement.GetProperty("id").GetString();
        using var destination = await admin.PostAsync(new Uri(url + "/api/destinations"), Json(
            $$$"""{"type":"webhook","name":"bench probe","url":"{{{receiver.Url}}}","secret":"bench-secret-0123456789","segments":["{{{segmentId}}}"]}"""));
        destination.EnsureSuccessStatusCode();
        return JsonDocument.Parse(await destination.Content.ReadAsStringAsync()).RootElement.GetProperty("id").GetString()!;
    }

    public async Task RunAsync(TimeSpan warmup, TimeSpan duration)
    {
        using var collect = new HttpClient { Timeout = TimeSpan.FromSeconds(30) };
        collect.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Basic", Convert.ToBase64String(Encoding.UTF8.GetBytes(options.WriteKey + ":")));
        await Task.Delay(warmup);
        var sends = new List<Task<bool>>();
        var end = Stopwatch.GetTimestamp() + (long)(duration.TotalSeconds * Stopwatch.Frequency);
        var next = Stopwatch.GetTimestamp();
        for (var n = 0; Stopwatch.GetTimestamp() < end; n++)
        {
            var user = $"webhook-probe-{Environment.ProcessId}-{n}";
            var sent = Stopwatch.GetTimestamp();
            _sent.Add((user, sent));
            sends.Add(SendAsync(collect, user));
            next += (long)(Interval.TotalSeconds * Stopwatch.Frequency);
            var wait = Stopwatch.GetElapsedTime(Stopwatch.GetTimestamp(), next);
            if (wait > TimeSpan.Zero) { await Task.Delay(wait); }
        }

        var acknowledged = await Task.WhenAll(sends);
        Acknowledged = acknowledged.Count(a => a);
        // Whatever has not arrived 10 s after the last send counts as missing.
        var deadline = Stopwatch.GetTimestamp() + (10 * Stopwatch.Frequency);
        while (Stopwatch.GetTimestamp() < deadline && _sent.Any(s => !receiver.TryArrival(s.User, out _))) { await Task.Delay(100); }
        foreach (var (user, sent) in _sent)
        {
            if (receiver.TryArrival(user, out var arrived))
            {
                LatenciesMs.Add(Stopwatch.GetElapsedTime(sent, arrived).TotalMilliseconds);
                if (_acked.TryGetValue(user, out var acked)) { AfterAckMs.Add(Stopwatch.GetElapsedTime(acked, arrived).TotalMilliseconds); }
            }
            else { Missing++; }
        }
    }

    private async Task<bool> SendAsync(HttpClient collect, string user)
    {
        using var response = await collect.PostAsync(new Uri(url + "/v1/track"), Json($$$"""{"userId":"{{{user}}}","event":"Webhook Probe"}"""));
        _acked[user] = Stopwatch.GetTimestamp();
        return response.IsSuccessStatusCode;
    }

    private static StringContent Json(string json) => new(json, Encoding.UTF8, "application/json");
}
