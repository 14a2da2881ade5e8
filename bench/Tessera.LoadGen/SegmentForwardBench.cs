using System.Diagnostics;
using System.Text;

namespace Tessera.LoadGen;

/// <summary>
/// Events forwarded per second by a Segment destination: a Segment-compatible receiver in this process
/// (<see cref="WebhookReceiver"/>'s <c>/v1/batch</c>), a destination subscribed to one event name, then N track
/// events of that name sent in batches of 500 (8 requests at a time); timed from the first send to the arrival of
/// the last distinct messageId. The time to have every event acknowledged by the collection API is reported beside it.
/// </summary>
internal static class SegmentForwardBench
{
    public static async Task<Dictionary<string, object?>> RunAsync(LoadOptions options, string url, HttpClient admin)
    {
        var n = options.SegmentForward;
        await using var receiver = await WebhookReceiver.StartAsync();
        await FileExportBench.CreateAsync(admin, url + "/api/destinations",
            $$$"""{"type":"segment","url":"{{{receiver.BaseUrl}}}","writeKey":"bench-key","events":["Bench Forward"],"batching":{"maxSize":{{{Math.Min(options.BatchSize, 2500)}}},"maxWaitMs":200}}""");
        using var collect = BenchProfiles.Collect(options);
        var started = Stopwatch.GetTimestamp();
        var chunks = Enumerable.Range(0, (n + 499) / 500).Select(c => Enumerable.Range(c * 500, Math.Min(500, n - (c * 500))));
        await Parallel.ForEachAsync(chunks, new ParallelOptions { MaxDegreeOfParallelism = 8 }, async (chunk, token) =>
        {
            var batch = string.Join(",", chunk.Select(i => $$$"""{"type":"track","userId":"fwd-{{{i % 5000}}}","event":"Bench Forward","messageId":"fwd-msg-{{{i}}}","properties":{"n":{{{i}}},"sku":"p-{{{i % 97}}}"}}"""));
            using var response = await collect.PostAsync(new Uri(url + "/v1/batch"), new StringContent($$$"""{"batch":[{{{batch}}}]}""", Encoding.UTF8, "application/json"), token);
            response.EnsureSuccessStatusCode();
        });
        var acknowledged = Stopwatch.GetElapsedTime(started);
        var deadline = Stopwatch.GetTimestamp() + (300 * Stopwatch.Frequency);
        while (receiver.DistinctUsers < n && Stopwatch.GetTimestamp() < deadline) { await Task.Delay(20); }
        var forwarded = receiver.DistinctUsers == n ? Stopwatch.GetElapsedTime(started, receiver.LastArrival) : (TimeSpan?)null;
        var rate = forwarded is { } f ? n / f.TotalSeconds : (double?)null;
        Console.WriteLine($"  {n:N0} events: acknowledged after {acknowledged.TotalSeconds:N2} s, all forwarded after "
            + $"{(forwarded is { } t ? $"{t.TotalSeconds:N2} s ({rate:N0} events/s)" : "(not all within 300 s)")} in {receiver.Requests:N0} requests");
        return new Dictionary<string, object?>
        {
            ["label"] = options.Label,
            ["mode"] = "segment-forward",
            ["events"] = n,
            ["acknowledged_s"] = Math.Round(acknowledged.TotalSeconds, 2),
            ["forwarded_s"] = forwarded is { } d ? Math.Round(d.TotalSeconds, 2) : null,
            ["forwarded_per_s"] = rate is { } r ? Math.Round(r) : null,
            ["requests"] = receiver.Requests,
            ["load_average"] = File.Exists("/proc/loadavg") ? File.ReadAllText("/proc/loadavg").Split(' ')[0] : null,
        };
    }
}
