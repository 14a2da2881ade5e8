using System.Diagnostics;
using System.Text;
using System.Text.Json;

namespace Tessera.LoadGen;

/// <summary>
/// Issue 6's bulk figure: an audience of N profiles delivered to a webhook in batches. Loads N profiles (identify,
/// trait <c>bench_group</c>), creates an audience nobody is in and a batching webhook destination on it, then changes
/// the definition so all N enter at once, and times from that PUT to the last batch's arrival.
/// </summary>
internal static class AudienceDelivery
{
    public static async Task<Dictionary<string, object?>> RunAsync(LoadOptions options, string url, HttpClient admin)
    {
        var n = options.AudienceDelivery;
        await BenchProfiles.LoadAsync(options, url, n);

        await using var receiver = await WebhookReceiver.StartAsync();
        using var segment = await admin.PostAsync(new Uri(url + "/api/segments"), Json("""{"name":"Bench group","definition":{"trait":"bench_group","op":"eq","value":"nobody yet"}}"""));
        segment.EnsureSuccessStatusCode();
        var segmentId = JsonDocument.Parse(await segment.Content.ReadAsStringAsync()).RootElement.GetProperty("id").GetString();
        using var destination = await admin.PostAsync(new Uri(url + "/api/destinations"), Json(
            $$$"""{"type":"webhook","name":"bench bulk","url":"{{{receiver.Url}}}","secret":"bench-secret-0123456789","segments":["{{{segmentId}}}"],"batching":{"maxSize":{{{options.BatchSize}}},"maxWaitMs":200}}"""));
        destination.EnsureSuccessStatusCode();

        var started = Stopwatch.GetTimestamp();
        using (var change = await admin.PutAsync(new Uri(url + $"/api/segments/{segmentId}"), Json("""{"name":"Bench group","definition":{"trait":"bench_group","op":"eq","value":"g"}}""")))
        {
            change.EnsureSuccessStatusCode();
        }

        var committed = Stopwatch.GetElapsedTime(started);
        var deadline = Stopwatch.GetTimestamp() + (180 * Stopwatch.Frequency);
        while (receiver.DistinctUsers < n && Stopwatch.GetTimestamp() < deadline) { await Task.Delay(20); }
        var total = receiver.DistinctUsers == n ? Stopwatch.GetElapsedTime(started, receiver.LastArrival) : (TimeSpan?)null;
        Console.WriteLine($"  audience of {n:N0}: entries committed {committed.TotalSeconds:N2} s after the PUT; all delivered after "
            + $"{(total is { } t ? $"{t.TotalSeconds:N2} s" : "(not all within 180 s)")} in {receiver.Requests:N0} requests ({receiver.Items:N0} items, {receiver.DistinctUsers:N0} distinct)");
        return new Dictionary<string, object?>
        {
            ["label"] = options.Label,
            ["mode"] = "audience-delivery",
            ["profiles"] = n,
            ["batch_size"] = options.BatchSize,
            ["entries_committed_s"] = Math.Round(committed.TotalSeconds, 2),
            ["delivered_s"] = total is { } d ? Math.Round(d.TotalSeconds, 2) : null,
            ["requests"] = receiver.Requests,
            ["items"] = receiver.Items,
            ["distinct"] = receiver.DistinctUsers,
            ["load_average"] = File.Exists("/proc/loadavg") ? File.ReadAllText("/proc/loadavg").Split(' ')[0] : null,
        };
    }

    private static StringContent Json(string json) => new(json, Encoding.UTF8, "application/json");
}
