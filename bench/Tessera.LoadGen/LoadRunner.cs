using System.Collections.Concurrent;
using System.Diagnostics;
using System.Net.Http.Headers;

namespace Tessera.LoadGen;

/// <summary>
/// Sends batches over a fixed number of connections for warm-up plus a measured window. Flat out, each connection
/// sends its next batch as soon as the last is answered (closed loop). At a target rate, sends are scheduled on a
/// fixed timetable and latency is counted from the scheduled time, not the actual send, so a stalled server is
/// charged for every request it delayed (no coordinated omission). A batch answered 503 is sent again (<see cref="LoadOptions.Retry"/>).
/// </summary>
internal sealed class LoadRunner(LoadOptions options, string url, MessageFactory messages)
{
    private readonly ConcurrentDictionary<int, long> _statuses = new();
    private long _errors;
    private long _sequence;

    public async Task<RunResult> RunAsync()
    {
        using var handler = new SocketsHttpHandler
        {
            MaxConnectionsPerServer = options.Connections,
            UseProxy = false,
            PooledConnectionLifetime = Timeout.InfiniteTimeSpan,
            PooledConnectionIdleTimeout = TimeSpan.FromMinutes(5),
        };
        using var client = new HttpClient(handler) { Timeout = TimeSpan.FromSeconds(options.RequestTimeout) };
        var auth = new AuthenticationHeaderValue("Basic", Convert.ToBase64String(System.Text.Encoding.UTF8.GetBytes(options.WriteKey + ":")));
        var target = new Uri(url + "/v1/batch");

        var frequency = (double)Stopwatch.Frequency;
        var start = Stopwatch.GetTimestamp() + (long)(0.05 * frequency);
        var measureFrom = start + (long)(options.Warmup * frequency);
        var end = measureFrom + (long)(options.Duration * frequency);
        var interval = options.Rate > 0 ? frequency * options.Batch / options.Rate : 0;

        var workers = new Task<WorkerResult>[options.Connections];
        for (var w = 0; w < workers.Length; w++)
        {
            workers[w] = Task.Run(() => WorkAsync(client, target, auth, start, measureFrom, end, interval));
        }

        var results = await Task.WhenAll(workers);
        if (options.LatencyLog is { } log) { WriteLatencyLog(log, results, measureFrom); }
        var latencies = results.SelectMany(r => r.LatenciesMs).ToArray();
        Array.Sort(latencies);
        return new RunResult(
            Requests: latencies.Length,
            AckedInWindow: results.Sum(r => r.AckedInWindow),
            AckedTotal: results.Sum(r => r.AckedTotal),
            SentTotal: results.Sum(r => r.SentTotal),
            LatenciesMs: latencies,
            Statuses: new SortedDictionary<int, long>(_statuses),
            Errors: Interlocked.Read(ref _errors),
            Late: results.Sum(r => r.Late),
            Retried: results.Sum(r => r.Retried));
    }

    /// <summary>One line per measured request, in the order they were due: UTC time due (ISO 8601), latency ms, status (0: no answer).</summary>
    private static void WriteLatencyLog(string path, WorkerResult[] results, long measureFrom)
    {
        var origin = DateTime.UtcNow - Stopwatch.GetElapsedTime(measureFrom);
        var lines = results.SelectMany(r => r.Requests)
            .OrderBy(r => r.Due)
            .Select(r => string.Create(System.Globalization.CultureInfo.InvariantCulture,
                $"{origin + TimeSpan.FromSeconds((double)(r.Due - measureFrom) / Stopwatch.Frequency):yyyy-MM-ddTHH:mm:ss.fffZ} {r.LatencyMs:F2} {r.Status}"));
        File.WriteAllLines(path, lines);
    }

    private sealed record WorkerResult(List<double> LatenciesMs, List<(long Due, double LatencyMs, int Status)> Requests, long AckedInWindow, long AckedTotal, long SentTotal, long Late, long Retried);

    private async Task<WorkerResult> WorkAsync(HttpClient client, Uri target, AuthenticationHeaderValue auth, long start, long measureFrom, long end, double interval)
    {
        var buffer = new byte[messages.MaxBatchBytes];
        var latencies = new List<double>(4096);
        var requests = new List<(long Due, double LatencyMs, int Status)>(options.LatencyLog is null ? 0 : 4096);
        long ackedInWindow = 0, ackedTotal = 0, sentTotal = 0, late = 0, retried = 0;
        var toMs = 1000.0 / Stopwatch.Frequency;
        var giveUpAt = end + (long)(options.RetryFor * Stopwatch.Frequency);
        while (true)
        {
            var sequence = Interlocked.Increment(ref _sequence) - 1;
            long due;
            if (interval > 0)
            {
                due = start + (long)(sequence * interval);
                if (due >= end) { break; }
                // Waits on the timer, never spinning: at 25,000 events/s a spin for the last millisecond before each send
                // kept 0.3 of the machine's 2 cores busy, taken from the server it measures. The wait rounded up to the
                // millisecond and the timer's own delay send a batch up to ~2 ms after its time, never before it; the
                // latency counts from the time due, so that is charged to the server.
                var wait = (due - Stopwatch.GetTimestamp()) * toMs;
                if (wait > 0) { await Task.Delay(TimeSpan.FromMilliseconds(Math.Ceiling(wait))); }
                else if (wait < -5) { late++; }
            }
            else
            {
                due = Math.Max(Stopwatch.GetTimestamp(), start);
                if (due >= end) { break; }
            }

            var length = messages.Write(sequence, buffer);
            sentTotal += options.Batch;
            var (status, sends) = await SendAsync(client, target, auth, buffer, length, giveUpAt);
            retried += sends - 1;
            var done = Stopwatch.GetTimestamp();
            if (status == 200) { ackedTotal += options.Batch; }
            // Latency for every request due in the measured window; throughput for every 200 that came back in it.
            if (due >= measureFrom)
            {
                latencies.Add((done - due) * toMs);
                if (options.LatencyLog is not null) { requests.Add((due, (done - due) * toMs, status)); }
            }
            if (status == 200 && done >= measureFrom && done <= end) { ackedInWindow += options.Batch; }
        }

        return new WorkerResult(latencies, requests, ackedInWindow, ackedTotal, sentTotal, late, retried);
    }

    /// <summary>
    /// Sends one batch; returns the last answer's status (0: none) and how many times it was sent. With <see cref="LoadOptions.Retry"/>, a 503, a 429 or
    /// no answer is followed, after the answer's Retry-After (1 s without one), by the same bytes again, until another
    /// answer or <paramref name="giveUpAt"/>; every answer counts in the statuses.
    /// </summary>
    private async Task<(int Status, int Sends)> SendAsync(HttpClient client, Uri target, AuthenticationHeaderValue auth, byte[] buffer, int length, long giveUpAt)
    {
        for (var sends = 1; ; sends++)
        {
            var status = 0;
            TimeSpan? retryAfter = null;
            try
            {
                using var content = new ByteArrayContent(buffer, 0, length);
                content.Headers.ContentType = new MediaTypeHeaderValue("application/json");
                using var request = new HttpRequestMessage(HttpMethod.Post, target) { Content = content };
                request.Headers.Authorization = auth;
                using var response = await client.SendAsync(request, HttpCompletionOption.ResponseContentRead);
                status = (int)response.StatusCode;
                retryAfter = response.Headers.RetryAfter?.Delta;
            }
            catch (Exception e) when (e is HttpRequestException or TaskCanceledException or IOException)
            {
                Interlocked.Increment(ref _errors);
            }

            if (status != 0) { _statuses.AddOrUpdate(status, 1, (_, n) => n + 1); }
            if (!options.Retry || status is not (0 or 429 or 503) || Stopwatch.GetTimestamp() > giveUpAt) { return (status, sends); }
            await Task.Delay(retryAfter ?? TimeSpan.FromSeconds(1));
        }
    }
}

internal sealed record RunResult(
    int Requests, long AckedInWindow, long AckedTotal, long SentTotal, double[] LatenciesMs,
    SortedDictionary<int, long> Statuses, long Errors, long Late, long Retried)
{
    public double Percentile(double p) =>
        LatenciesMs.Length == 0 ? double.NaN : LatenciesMs[Math.Clamp((int)Math.Ceiling(p / 100 * LatenciesMs.Length) - 1, 0, LatenciesMs.Length - 1)];
}
