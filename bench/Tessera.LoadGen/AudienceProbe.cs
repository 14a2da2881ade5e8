using System.Diagnostics;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;

namespace Tessera.LoadGen;

/// <summary>
/// Measures how fast an audience follows the data while load runs: every interval it sends one event that makes a
/// new profile enter a real-time audience, then polls until (a) the profile shows the audience
/// (<c>GET /api/profiles?identifier=...</c>, its <c>segments</c>) and (b) the entry is recorded
/// (<c>GET /api/profiles/{id}/segments</c>, its <c>history</c>). Both times run from the send. It probes from the
/// start and records from the end of the warm-up.
/// </summary>
internal sealed class AudienceProbe(LoadOptions options, string url)
{
    private readonly List<double> _visibleMs = [];
    private readonly List<double> _recordedMs = [];
    private readonly List<string> _log = [];

    public IReadOnlyList<double> VisibleMs => _visibleMs;

    public IReadOnlyList<double> RecordedMs => _recordedMs;

    public int Failures { get; private set; }

    /// <summary>One line a probe: UTC time sent, then ms from the send to its 200, to visible and to recorded, and the polls each took.</summary>
    public IReadOnlyList<string> Log => _log;

    /// <summary>Probe events acknowledged (they count in the store's total).</summary>
    public long Sent { get; private set; }

    /// <summary>Creates the probed audience (profiles that did "Probe Qualified" in the last hour) and returns its id.</summary>
    public async Task<string> CreateAudienceAsync(HttpClient admin)
    {
        using var response = await admin.PostAsync(new Uri(url + "/api/segments"), new StringContent(
            """{"name":"Probe: qualified in the last hour","definition":{"event":"Probe Qualified","within":"1h"}}""", Encoding.UTF8, "application/json"));
        response.EnsureSuccessStatusCode();
        using var document = JsonDocument.Parse(await response.Content.ReadAsStreamAsync());
        return document.RootElement.GetProperty("id").GetString()!;
    }

    public async Task RunAsync(HttpClient admin, string audienceId, TimeSpan warmup, TimeSpan duration)
    {
        using var collect = new HttpClient { Timeout = TimeSpan.FromSeconds(30) };
        collect.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Basic", Convert.ToBase64String(Encoding.UTF8.GetBytes(options.WriteKey + ":")));
        // Probes run through the warm-up too, unrecorded: the first calls of the two read endpoints are compiled by the
        // JIT then, as the load's are, instead of putting a cold start into the first recorded probe of every run.
        var measureFrom = Stopwatch.GetTimestamp() + (long)(warmup.TotalSeconds * Stopwatch.Frequency);
        var end = measureFrom + (long)(duration.TotalSeconds * Stopwatch.Frequency);
        var n = 0;
        while (Stopwatch.GetTimestamp() < end)
        {
            var recording = Stopwatch.GetTimestamp() >= measureFrom;
            var user = $"probe-{Environment.ProcessId}-{n++}";
            var sentAt = DateTime.UtcNow;
            var started = Stopwatch.GetTimestamp();
            var send = collect.PostAsync(new Uri(url + "/v1/track"), new StringContent(
                $$$"""{"userId":"{{{user}}}","event":"Probe Qualified","properties":{"n":{{{n}}}}}""", Encoding.UTF8, "application/json"));
            var acknowledged = send.ContinueWith(_ => Stopwatch.GetElapsedTime(started).TotalMilliseconds, TaskScheduler.Default);
            double? visible = null;
            string? profileId = null;
            var visiblePolls = 0;
            var recordedPolls = 0;
            while (visible is null && Stopwatch.GetElapsedTime(started) < TimeSpan.FromSeconds(30))
            {
                visiblePolls++;
                using var response = await admin.GetAsync(new Uri(url + $"/api/profiles?identifier=user_id:{user}"));
                if (response.IsSuccessStatusCode)
                {
                    using var document = JsonDocument.Parse(await response.Content.ReadAsStreamAsync());
                    if (document.RootElement.GetProperty("segments").EnumerateArray().Any(s => s.GetString() == audienceId))
                    {
                        visible = Stopwatch.GetElapsedTime(started).TotalMilliseconds;
                        profileId = document.RootElement.GetProperty("id").GetString();
                        break;
                    }
                }

                await Task.Delay(1);
            }

            double? recorded = null;
            while (profileId is not null && recorded is null && Stopwatch.GetElapsedTime(started) < TimeSpan.FromSeconds(30))
            {
                recordedPolls++;
                using var response = await admin.GetAsync(new Uri(url + $"/api/profiles/{profileId}/segments"));
                if (response.IsSuccessStatusCode)
                {
                    using var document = JsonDocument.Parse(await response.Content.ReadAsStreamAsync());
                    if (document.RootElement.GetProperty("history").GetArrayLength() > 0) { recorded = Stopwatch.GetElapsedTime(started).TotalMilliseconds; break; }
                }

                await Task.Delay(1);
            }

            using (var sent = await send)
            {
                if (sent.IsSuccessStatusCode) { Sent++; }
            }

            var ackMs = await acknowledged;
            if (!recording)
            {
                await Task.Delay(TimeSpan.FromMilliseconds(100));
                continue;
            }

            _log.Add(string.Create(System.Globalization.CultureInfo.InvariantCulture,
                $"{sentAt:HH:mm:ss.fff}\t{ackMs:F2}\t{visible:F2}\t{recorded:F2}\t{visiblePolls}\t{recordedPolls}"));
            if (visible is { } v && recorded is { } r)
            {
                _visibleMs.Add(v);
                _recordedMs.Add(r);
            }
            else
            {
                Failures++;
            }

            await Task.Delay(TimeSpan.FromMilliseconds(100));
        }
    }

    public static double Percentile(IReadOnlyList<double> values, double p)
    {
        if (values.Count == 0) { return double.NaN; }
        var sorted = values.Order().ToArray();
        return sorted[Math.Clamp((int)Math.Ceiling(p / 100 * sorted.Length) - 1, 0, sorted.Length - 1)];
    }
}
