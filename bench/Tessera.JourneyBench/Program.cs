// Journeys at scale, on the server hosted in this process (the same TesseraServer the CLI runs) over a fresh store:
//   1. N profiles are ingested through /v1/batch (identify, plan "free"), then an audience on plan "gold" (empty)
//      and an active journey on it: send (to a batching webhook) → wait 1h → send.
//   2. The audience's definition is changed to plan "free": all N profiles enter it at once (one API call).
//      Timed from that call: every run placed (waiting at the 1h step, its first send written to the outbox), and
//      every first send received by the webhook.
//   3. The server's clock (a FakeTimeProvider) is moved one hour: all N waits are due at once. Timed: every run moved
//      on and completed (the due-wait rate), and every second send received.
// Usage: dotnet bench/Tessera.JourneyBench/bin/Release/net10.0/Tessera.JourneyBench.dll [--profiles 100000] [--runs 3]
//        [--store duckdb|postgres --postgres "<connection string>"]
using System.Diagnostics;
using System.Globalization;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json.Nodes;
using Microsoft.Extensions.Time.Testing;
using Tessera.LoadGen;
using Tessera.Server.Hosting;

var profiles = Arg("--profiles", 100_000);
var runs = Arg("--runs", 3);
var store = ArgText("--store") ?? "duckdb";
var postgres = ArgText("--postgres");
Console.WriteLine($"journeys: {profiles:N0} profiles, {runs} runs, store {store}, {Environment.ProcessorCount} cores, load average {Load()}");

var results = new List<(double Place, double FirstSend, double Due, double SecondSend)>();
for (var run = 1; run <= runs; run++)
{
    var result = await RunAsync(run);
    results.Add(result);
    Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
        $"run {run}: placed in {result.Place:F1} s, first send received in {result.FirstSend:F1} s; due waits moved in {result.Due:F1} s ({profiles / result.Due:N0}/s), second send in {result.SecondSend:F1} s (load {Load()})"));
}

double Median(IEnumerable<double> values)
{
    var sorted = values.Order().ToList();
    return sorted.Count % 2 == 1 ? sorted[sorted.Count / 2] : (sorted[sorted.Count / 2 - 1] + sorted[sorted.Count / 2]) / 2;
}

Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
    $"median of {runs}: placed {Median(results.Select(r => r.Place)):F1} s, first send {Median(results.Select(r => r.FirstSend)):F1} s, due waits {Median(results.Select(r => r.Due)):F1} s ({profiles / Median(results.Select(r => r.Due)):N0}/s), second send {Median(results.Select(r => r.SecondSend)):F1} s"));
Console.WriteLine("RESULT " + new JsonObject
{
    ["profiles"] = profiles,
    ["store"] = store,
    ["runs"] = runs,
    ["placeSeconds"] = Median(results.Select(r => r.Place)),
    ["firstSendSeconds"] = Median(results.Select(r => r.FirstSend)),
    ["dueSeconds"] = Median(results.Select(r => r.Due)),
    ["secondSendSeconds"] = Median(results.Select(r => r.SecondSend)),
}.ToJsonString());
return 0;

async Task<(double Place, double FirstSend, double Due, double SecondSend)> RunAsync(int run)
{
    var dataDir = Path.Combine(Path.GetTempPath(), $"tessera-journeybench-{Environment.ProcessId}-{run}");
    var options = new TesseraOptions
    {
        Urls = "http://127.0.0.1:0",
        DataDir = dataDir,
        AdminToken = "bench-admin",
        WriteKey = "bench-write",
        PrintBanner = false,
        Store = store,
        DuckDbMemoryLimitMb = 2048,
    };
    if (store == "postgres")
    {
        var schema = $"jbench_{Environment.ProcessId}_{run}";
        options.Postgres = new Npgsql.NpgsqlConnectionStringBuilder(postgres ?? throw new ArgumentException("--postgres is required with --store postgres")) { SearchPath = schema }.ConnectionString;
    }

    var clock = new FakeTimeProvider(DateTimeOffset.UtcNow);
    var app = TesseraServer.Build(options, clock: clock);
    await app.StartAsync();
    await using var receiver = await WebhookReceiver.StartAsync();
    var address = app.Urls.First().Replace("[::]", "127.0.0.1", StringComparison.Ordinal);
    using var admin = new HttpClient { BaseAddress = new Uri(address + "/"), Timeout = TimeSpan.FromMinutes(10) };
    admin.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", "bench-admin");
    using var collect = new HttpClient { BaseAddress = new Uri(address + "/"), Timeout = TimeSpan.FromMinutes(2) };
    collect.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Basic", Convert.ToBase64String(Encoding.UTF8.GetBytes("bench-write:")));
    try
    {
        // 1. The profiles, 500 to a batch, 4 requests at a time.
        await Parallel.ForEachAsync(Enumerable.Range(0, (profiles + 499) / 500), new ParallelOptions { MaxDegreeOfParallelism = 4 }, async (b, ct) =>
        {
            var batch = new JsonArray();
            for (var i = b * 500; i < Math.Min(profiles, (b + 1) * 500); i++)
            {
                batch.Add(new JsonObject { ["type"] = "identify", ["userId"] = $"u{i}", ["traits"] = new JsonObject { ["plan"] = "free", ["email"] = $"u{i}@example.com" } });
            }

            var response = await collect.PostAsync("v1/batch", Json(new JsonObject { ["batch"] = batch }), ct);
            response.EnsureSuccessStatusCode();
        });
        await Until(async () => (await admin.GetFromJsonAsync<JsonObject>("api/stats"))!["profiles"]!.GetValue<long>() >= profiles, "profiles indexed");

        var segment = await PostAsync(admin, "api/segments", """{"name":"Gold","definition":{"trait":"plan","op":"eq","value":"gold"}}""");
        var destination = await PostAsync(admin, "api/destinations", $$$"""{"type":"webhook","url":"{{{receiver.Url}}}","secret":"bench-secret-0123456789","batching":{"maxSize":1000,"maxWaitMs":200}}""");
        var journey = await PostAsync(admin, "api/journeys", $$$"""
            {"name":"Bench","status":"active","entry":{"segment":"{{{segment}}}"},
             "steps":[{"id":"hello","type":"send","destination":"{{{destination}}}"},{"id":"wait","type":"wait","duration":"1h"},{"id":"again","type":"send","destination":"{{{destination}}}"}]}
            """);

        // 2. Everyone enters at once.
        var started = Stopwatch.GetTimestamp();
        var put = await admin.PutAsync($"api/segments/{segment}", Json(JsonNode.Parse("""{"name":"Gold","definition":{"trait":"plan","op":"eq","value":"free"}}""")!));
        put.EnsureSuccessStatusCode();
        await Until(async () => await CountAsync(admin, journey, "activeByStep", "wait") >= profiles, "runs placed");
        var place = Stopwatch.GetElapsedTime(started).TotalSeconds;
        await Until(() => Task.FromResult(receiver.Items >= profiles), "first sends received");
        var firstSend = Stopwatch.GetElapsedTime(started).TotalSeconds;

        // 3. An hour later, by the server's clock: every wait is due.
        started = Stopwatch.GetTimestamp();
        clock.Advance(TimeSpan.FromHours(1));
        await Until(async () => await CountAsync(admin, journey, "completed", null) >= profiles, "due waits moved");
        var due = Stopwatch.GetElapsedTime(started).TotalSeconds;
        await Until(() => Task.FromResult(receiver.Items >= 2L * profiles), "second sends received");
        var secondSend = Stopwatch.GetElapsedTime(started).TotalSeconds;
        return (place, firstSend, due, secondSend);
    }
    finally
    {
        await app.StopAsync();
        await app.DisposeAsync();
        try { Directory.Delete(dataDir, recursive: true); } catch (IOException) { } catch (UnauthorizedAccessException) { }
    }
}

static async Task<long> CountAsync(HttpClient admin, string journey, string what, string? step)
{
    var counts = (await admin.GetFromJsonAsync<JsonObject>($"api/journeys/{journey}/positions?limit=1"))!["counts"]!;
    var node = step is null ? counts[what] : counts[what]?[step];
    return node?.GetValue<long>() ?? 0;
}

static async Task<string> PostAsync(HttpClient admin, string path, string json)
{
    var response = await admin.PostAsync(path, Json(JsonNode.Parse(json)!));
    if (!response.IsSuccessStatusCode) { throw new InvalidOperationException($"{path}: {(int)response.StatusCode} {await response.Content.ReadAsStringAsync()}"); }
    return (await response.Content.ReadFromJsonAsync<JsonObject>())!["id"]!.GetValue<string>();
}

static async Task Until(Func<Task<bool>> condition, string what)
{
    var deadline = Stopwatch.GetTimestamp() + Stopwatch.Frequency * 1800;
    while (!await Quietly(condition))
    {
        if (Stopwatch.GetTimestamp() > deadline) { throw new TimeoutException($"timed out waiting for: {what}"); }
        await Task.Delay(100);
    }
}

// A read that the server answers 503 (its read barrier waiting out a busy store) is "not yet", not a failure.
static async Task<bool> Quietly(Func<Task<bool>> condition)
{
    try
    {
        return await condition();
    }
    catch (HttpRequestException)
    {
        return false;
    }
}

static StringContent Json(JsonNode node) => new(node.ToJsonString(), Encoding.UTF8, "application/json");

static string Load() => File.Exists("/proc/loadavg") ? string.Join(' ', File.ReadAllText("/proc/loadavg").Split(' ').Take(3)) : "?";

int Arg(string name, int fallback) => ArgText(name) is { } text ? int.Parse(text, CultureInfo.InvariantCulture) : fallback;

string? ArgText(string name)
{
    var i = Array.IndexOf(args, name);
    return i >= 0 && i + 1 < args.Length ? args[i + 1] : null;
}
