using System.Globalization;
using System.Net.Http.Headers;
using System.Text.Json;
using Tessera.LoadGen;

LoadOptions options;
try
{
    options = LoadOptions.Parse(args);
}
catch (ArgumentException e)
{
    await Console.Error.WriteLineAsync(e.Message);
    return 2;
}

await using var server = options.Spawn is null ? null : await ServerProcess.StartAsync(options);
var url = server?.Url ?? options.Url;
var pid = server?.Pid ?? options.ServerPid;
var messages = new MessageFactory(options.Batch, templates: 64, options.Seed);
var mode = options.Rate > 0 ? $"open loop at {options.Rate:N0} events/s" : "flat out (closed loop)";
Console.WriteLine($"{options.Label} → {url}/v1/batch: {mode}, batches of {options.Batch} (~{messages.AverageMessageBytes:N0} B/message), "
    + $"{options.Connections} connections, {options.Warmup} s warm-up + {options.Duration} s measured{(pid is null ? "" : $", server pid {pid}")}");

using var admin = new HttpClient { Timeout = TimeSpan.FromSeconds(600) };
admin.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", options.AdminToken);
if (options.AudienceDelivery > 0)
{
    Console.WriteLine("RESULT " + JsonSerializer.Serialize(await AudienceDelivery.RunAsync(options, url, admin)));
    return 0;
}

if (options.FileExport > 0)
{
    Console.WriteLine("RESULT " + JsonSerializer.Serialize(await FileExportBench.RunAsync(options, url, admin)));
    return 0;
}

if (options.SegmentForward > 0)
{
    Console.WriteLine("RESULT " + JsonSerializer.Serialize(await SegmentForwardBench.RunAsync(options, url, admin)));
    return 0;
}

long? before = options.Verify ? await StoredEventsAsync(admin, url, TimeSpan.FromSeconds(60)) : null;

var probe = options.ProbeAudience ? new AudienceProbe(options, url) : null;
var probing = probe is null ? Task.CompletedTask : probe.RunAsync(admin, await probe.CreateAudienceAsync(admin), TimeSpan.FromSeconds(options.Warmup), TimeSpan.FromSeconds(options.Duration));
await using var webhookReceiver = options.ProbeWebhook ? await WebhookReceiver.StartAsync() : null;
var webhookProbe = webhookReceiver is null ? null : new WebhookProbe(options, url, webhookReceiver);
if (webhookProbe is not null) { await webhookProbe.SetUpAsync(admin); }
var webhookProbing = webhookProbe is null ? Task.CompletedTask : webhookProbe.RunAsync(TimeSpan.FromSeconds(options.Warmup), TimeSpan.FromSeconds(options.Duration));
var sampler = pid is { } p ? new ProcessSampler(p, TimeSpan.FromMilliseconds(100)) : null;
var ownCpu = Environment.CpuUsage.TotalTime;
var ownClock = System.Diagnostics.Stopwatch.GetTimestamp();
var result = await new LoadRunner(options, url, messages).RunAsync();
var loadGenCores = (Environment.CpuUsage.TotalTime - ownCpu).TotalSeconds / System.Diagnostics.Stopwatch.GetElapsedTime(ownClock).TotalSeconds;
if (sampler is not null) { await sampler.DisposeAsync(); }
await probing;
await webhookProbing;
if (probe is not null && options.ProbeLog is { } probeLog)
{
    await File.WriteAllLinesAsync(probeLog, ["sent_utc\tack_ms\tvisible_ms\trecorded_ms\tvisible_polls\trecorded_polls", .. probe.Log]);
}

// With the journal, a 200 means "in the journal" and the store follows; /api/stats waits for it (503 while it catches up).
var loadEnded = System.Diagnostics.Stopwatch.GetTimestamp();
long? after = options.Verify ? await StoredEventsAsync(admin, url, TimeSpan.FromSeconds(options.CatchUpTimeout)) : null;
var catchUpSeconds = System.Diagnostics.Stopwatch.GetElapsedTime(loadEnded).TotalSeconds;
long? stored = after - before;
// The probe's own events are stored too.
// Zero loss: every acknowledged event is in the store; and, the issue's own words, the store holds as many as were sent
// (with retries every batch is acknowledged in the end; without, a batch answered 503 is sent and not stored).
var probeEvents = (probe?.Sent ?? 0) + (webhookProbe?.Acknowledged ?? 0);
bool? zeroLoss = stored is { } s ? s == result.AckedTotal + probeEvents : null;
bool? storedAllSent = stored is { } t ? t == result.SentTotal + probeEvents : null;

var eventsPerSecond = result.AckedInWindow / options.Duration;
var summary = new Dictionary<string, object?>
{
    ["label"] = options.Label,
    ["mode"] = options.Rate > 0 ? "rate" : "flat",
    ["target_events_per_s"] = options.Rate,
    ["batch"] = options.Batch,
    ["connections"] = options.Connections,
    ["duration_s"] = options.Duration,
    ["message_bytes"] = Math.Round(messages.AverageMessageBytes),
    ["events_per_s"] = Math.Round(eventsPerSecond),
    ["requests_per_s"] = Math.Round(eventsPerSecond / options.Batch, 1),
    ["requests"] = result.Requests,
    ["p50_ms"] = Math.Round(result.Percentile(50), 2),
    ["p90_ms"] = Math.Round(result.Percentile(90), 2),
    ["p99_ms"] = Math.Round(result.Percentile(99), 2),
    ["max_ms"] = Math.Round(result.LatenciesMs.Length > 0 ? result.LatenciesMs[^1] : double.NaN, 2),
    ["statuses"] = result.Statuses.ToDictionary(k => k.Key.ToString(CultureInfo.InvariantCulture), k => k.Value),
    ["non_200"] = result.Statuses.Where(k => k.Key != 200).Sum(k => k.Value),
    ["errors"] = result.Errors,
    ["late_sends"] = result.Late,
    ["sent_events"] = result.SentTotal,
    ["acked_events"] = result.AckedTotal,
    ["stored_events"] = stored,
    ["zero_loss"] = zeroLoss,
    ["stored_all_sent"] = storedAllSent,
    ["retried_requests"] = result.Retried,
    // Time from the end of the load until the store held every acknowledged event, and the rate at which the store
    // took them over the whole run (warm-up + measured window + catch-up): the sustained rate behind the answers.
    ["catch_up_s"] = options.Verify ? Math.Round(catchUpSeconds, 2) : null,
    ["stored_events_per_s"] = stored is { } st ? Math.Round(st / (options.Warmup + options.Duration + catchUpSeconds)) : null,
    ["rss_max_mb"] = sampler is null ? null : Math.Round(sampler.MaxRssKb / 1024.0, 1),
    ["rss_hwm_mb"] = sampler is null ? null : Math.Round(sampler.HwmKb / 1024.0, 1),
    ["server_cpu_cores"] = sampler is null ? null : Math.Round(sampler.CpuCores, 2),
    ["loadgen_cpu_cores"] = Math.Round(loadGenCores, 2),
    ["probe_count"] = probe?.VisibleMs.Count,
    ["probe_failures"] = probe?.Failures,
    ["probe_visible_p50_ms"] = probe is null ? null : Math.Round(AudienceProbe.Percentile(probe.VisibleMs, 50), 2),
    ["probe_visible_p99_ms"] = probe is null ? null : Math.Round(AudienceProbe.Percentile(probe.VisibleMs, 99), 2),
    ["probe_recorded_p50_ms"] = probe is null ? null : Math.Round(AudienceProbe.Percentile(probe.RecordedMs, 50), 2),
    ["probe_recorded_p99_ms"] = probe is null ? null : Math.Round(AudienceProbe.Percentile(probe.RecordedMs, 99), 2),
    ["webhook_probe_count"] = webhookProbe?.LatenciesMs.Count,
    ["webhook_probe_missing"] = webhookProbe?.Missing,
    ["webhook_p50_ms"] = webhookProbe is null ? null : Math.Round(AudienceProbe.Percentile(webhookProbe.LatenciesMs, 50), 2),
    ["webhook_p99_ms"] = webhookProbe is null ? null : Math.Round(AudienceProbe.Percentile(webhookProbe.LatenciesMs, 99), 2),
    ["webhook_after_200_p50_ms"] = webhookProbe is null ? null : Math.Round(AudienceProbe.Percentile(webhookProbe.AfterAckMs, 50), 2),
    ["webhook_after_200_p99_ms"] = webhookProbe is null ? null : Math.Round(AudienceProbe.Percentile(webhookProbe.AfterAckMs, 99), 2),
    ["webhook_max_ms"] = webhookProbe is null ? null : Math.Round(webhookProbe.LatenciesMs.DefaultIfEmpty(double.NaN).Max(), 2),
    ["load_average"] = File.Exists("/proc/loadavg") ? File.ReadAllText("/proc/loadavg").Split(' ')[0] : null,
};

Console.WriteLine($"  accepted {eventsPerSecond:N0} events/s ({eventsPerSecond / options.Batch:N1} requests/s), {result.Requests} requests measured");
Console.WriteLine($"  latency ms: p50 {result.Percentile(50):N1}  p90 {result.Percentile(90):N1}  p99 {result.Percentile(99):N1}  max {summary["max_ms"]}");
Console.WriteLine($"  statuses: {string.Join(", ", result.Statuses.Select(k => $"{k.Key}×{k.Value}"))}; transport errors {result.Errors}; sends >5 ms late {result.Late}");
if (options.Verify)
{
    Console.WriteLine($"  loss check: sent {result.SentTotal}, acknowledged {result.AckedTotal}, stored {stored} → {(zeroLoss == true ? "zero loss" : "MISMATCH")}"
        + $"{(storedAllSent == true ? " (every event sent is stored" : $" (NOT every event sent is stored: {result.SentTotal - result.AckedTotal} never acknowledged")}, {result.Retried} requests sent again); "
        + $"store caught up {catchUpSeconds:N1} s after the load ({summary["stored_events_per_s"]:N0} events/s stored over the run)");
}

if (probe is not null)
{
    Console.WriteLine($"  audience probe: {probe.VisibleMs.Count} entries, {probe.Failures} failed; visible p50 {summary["probe_visible_p50_ms"]} p99 {summary["probe_visible_p99_ms"]} ms, "
        + $"recorded p50 {summary["probe_recorded_p50_ms"]} p99 {summary["probe_recorded_p99_ms"]} ms");
}

if (webhookProbe is not null)
{
    Console.WriteLine($"  webhook probe: {webhookProbe.LatenciesMs.Count} audience entries delivered, {webhookProbe.Missing} missing; event → webhook request "
        + $"p50 {summary["webhook_p50_ms"]} p99 {summary["webhook_p99_ms"]} max {summary["webhook_max_ms"]} ms; "
        + $"from the event's 200 (activation's own share; negative: the webhook came first) p50 {summary["webhook_after_200_p50_ms"]} p99 {summary["webhook_after_200_p99_ms"]} ms");
}

if (sampler is not null)
{
    Console.WriteLine($"  server: RSS max {summary["rss_max_mb"]} MB (VmHWM {summary["rss_hwm_mb"]} MB), CPU {sampler.CpuCores:N2} cores; load generator CPU {loadGenCores:N2} cores");
}

// A probe that saw nothing has NaN percentiles: written as NaN (Python's json reads it), not a crash losing the run.
Console.WriteLine("RESULT " + JsonSerializer.Serialize(summary, new JsonSerializerOptions { NumberHandling = System.Text.Json.Serialization.JsonNumberHandling.AllowNamedFloatingPointLiterals }));
return zeroLoss == false || result.AckedTotal == 0 ? 1 : 0;

static async Task<long> StoredEventsAsync(HttpClient admin, string url, TimeSpan timeout)
{
    var deadline = DateTime.UtcNow + timeout;
    while (true)
    {
        using var response = await admin.GetAsync(new Uri(url + "/api/stats"));
        if (response.StatusCode == System.Net.HttpStatusCode.ServiceUnavailable && DateTime.UtcNow < deadline)
        {
            await Task.Delay(200);
            continue;
        }

        response.EnsureSuccessStatusCode();
        using var document = JsonDocument.Parse(await response.Content.ReadAsStreamAsync());
        return document.RootElement.GetProperty("events").GetInt64();
    }
}
