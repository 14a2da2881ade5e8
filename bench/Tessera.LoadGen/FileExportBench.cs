using System.Diagnostics;
using System.Text;
using System.Text.Json;

namespace Tessera.LoadGen;

/// <summary>
/// A file destination's run over an audience of N profiles, as CSV and as Parquet: loads N profiles, makes an
/// audience of all of them, then for each format creates a file destination and asks for a run
/// (<c>POST /api/destinations/{id}/run</c>), timing it from the request to the log saying delivered, with the run's
/// own duration, the file's size and its rows from the log.
/// </summary>
internal static class FileExportBench
{
    public static async Task<Dictionary<string, object?>> RunAsync(LoadOptions options, string url, HttpClient admin)
    {
        var n = options.FileExport;
        await BenchProfiles.LoadAsync(options, url, n);
        var segmentId = await CreateAsync(admin, url + "/api/segments", """{"name":"Bench export","definition":{"trait":"bench_group","op":"eq","value":"g"}}""");
        var directory = Path.Combine(Path.GetTempPath(), $"tessera-export-bench-{Guid.NewGuid():N}");
        var result = new Dictionary<string, object?> { ["label"] = options.Label, ["mode"] = "file-export", ["profiles"] = n };
        try
        {
            foreach (var format in new[] { "csv", "parquet" })
            {
                var destination = await CreateAsync(admin, url + "/api/destinations",
                    $$$"""{"type":"file","segments":["{{{segmentId}}}"],"directory":"{{{directory}}}","format":"{{{format}}}","schedule":{"every":"366d"}}""");
                var started = Stopwatch.GetTimestamp();
                using (var run = await BenchProfiles.PatientlyAsync(() => admin.PostAsync(new Uri(url + $"/api/destinations/{destination}/run"), null))) { run.EnsureSuccessStatusCode(); }
                JsonElement? record = null;
                var deadline = Stopwatch.GetTimestamp() + (300 * Stopwatch.Frequency);
                while (record is null && Stopwatch.GetTimestamp() < deadline)
                {
                    await Task.Delay(20);
                    using var page = await BenchProfiles.PatientlyAsync(() => admin.GetAsync(new Uri(url + $"/api/destinations/{destination}/deliveries?limit=1")));
                    var log = JsonDocument.Parse(await page.EnsureSuccessStatusCode().Content.ReadAsStringAsync()).RootElement.GetProperty("items");
                    if (log.GetArrayLength() == 1 && log[0].GetProperty("status").GetString() == "delivered") { record = log[0].GetProperty("payload").GetProperty("result").Clone(); }
                }

                var wall = Stopwatch.GetElapsedTime(started);
                if (record is not { } r) { throw new InvalidOperationException($"the {format} run did not finish within 300 s"); }
                var (rows, bytes, ms) = (r.GetProperty("rows").GetInt64(), r.GetProperty("bytes").GetInt64(), r.GetProperty("durationMs").GetInt64());
                Console.WriteLine($"  {format}: {rows:N0} rows, {bytes / 1048576.0:N1} MiB, run {ms:N0} ms, request to logged {wall.TotalSeconds:N2} s");
                result[$"{format}_rows"] = rows;
                result[$"{format}_bytes"] = bytes;
                result[$"{format}_run_ms"] = ms;
                result[$"{format}_wall_s"] = Math.Round(wall.TotalSeconds, 2);
            }
        }
        finally
        {
            if (Directory.Exists(directory)) { Directory.Delete(directory, recursive: true); }
        }

        result["load_average"] = File.Exists("/proc/loadavg") ? File.ReadAllText("/proc/loadavg").Split(' ')[0] : null;
        return result;
    }

    public static async Task<string> CreateAsync(HttpClient admin, string url, string json)
    {
        using var response = await BenchProfiles.PatientlyAsync(() => admin.PostAsync(new Uri(url), new StringContent(json, Encoding.UTF8, "application/json")));
        if (!response.IsSuccessStatusCode) { throw new InvalidOperationException($"{url}: {(int)response.StatusCode} {await response.Content.ReadAsStringAsync()}"); }
        return JsonDocument.Parse(await response.Content.ReadAsStringAsync()).RootElement.GetProperty("id").GetString()!;
    }
}
