using System.Globalization;

namespace Tessera.LoadGen;

/// <summary>The load generator's settings, from <c>--name value</c> flags; every default is here.</summary>
internal sealed class LoadOptions
{
    public string Url { get; set; } = "http://127.0.0.1:8080";
    public string WriteKey { get; set; } = Environment.GetEnvironmentVariable("TESSERA_WRITE_KEY") ?? "wk_bench";
    public string AdminToken { get; set; } = Environment.GetEnvironmentVariable("TESSERA_ADMIN_TOKEN") ?? "adm_bench";
    public int Batch { get; set; } = 100;
    public int Connections { get; set; } = 16;

    /// <summary>Target events/s; 0 means flat out (closed loop: each connection sends its next batch when the last is answered).</summary>
    public double Rate { get; set; }
    public double Duration { get; set; } = 20;
    public double Warmup { get; set; } = 3;

    /// <summary>Check GET /api/stats before and after: stored = acknowledged. Off for the ceiling, which stores nothing.</summary>
    public bool Verify { get; set; } = true;

    /// <summary><c>tessera</c> or <c>ceiling</c>: start that server on a free port with a fresh data directory, run, stop it.</summary>
    public string? Spawn { get; set; }
    public string? Dll { get; set; }
    public int? ServerPid { get; set; }

    /// <summary>
    /// With --spawn tessera: a DuckDB file (e.g. one Tessera.AudienceBench filled with a million profiles) copied into the
    /// fresh data directory before the server starts, so the run measures a store that already holds that data.
    /// </summary>
    public string? StoreFrom { get; set; }

    /// <summary>With --spawn: where to write the server's output when it stops.</summary>
    public string? ServerLog { get; set; }

    /// <summary>With --spawn tessera: extra flags for <c>tessera serve</c> (e.g. <c>--serve-arg --no-journal</c> for the baseline).</summary>
    public List<string> ServeArgs { get; } = [];

    /// <summary>How long to wait, after the load, for the store to catch up (GET /api/stats waits for it, 503 meanwhile).</summary>
    public double CatchUpTimeout { get; set; } = 600;
    public string Label { get; set; } = "";
    public int Seed { get; set; } = 42;
    public double RequestTimeout { get; set; } = 30;

    /// <summary>
    /// Sends a batch answered 503 (or 429, or not answered at all) again, as Segment's SDKs do: after its Retry-After
    /// (1 s without one), the same bytes, so the same message ids, which the server stores once. Then every event sent
    /// is acknowledged in the end, and "stored = sent" is the zero loss. <c>--no-retry</c> counts such a batch as
    /// sent and not acknowledged (the runs before 2026-12-07 did).
    /// </summary>
    public bool Retry { get; set; } = true;

    /// <summary>How long after the load a batch is still sent again before the generator gives up on it (counted as not acknowledged).</summary>
    public double RetryFor { get; set; } = 120;

    /// <summary>A file to write every measured request to (UTC time it was due, latency in ms, status), to place slow ones in time.</summary>
    public string? LatencyLog { get; set; }

    /// <summary>Also measure how fast a real-time audience follows the data while the load runs (<see cref="AudienceProbe"/>).</summary>
    public bool ProbeAudience { get; set; }

    /// <summary>A file to write every audience probe to (UTC time sent, its 200, visible, recorded, polls of each), to see which part a slow one spent its time in.</summary>
    public string? ProbeLog { get; set; }

    /// <summary>Also measure event → webhook request for an audience entry while the load runs (<see cref="WebhookProbe"/>).</summary>
    public bool ProbeWebhook { get; set; }

    /// <summary>Instead of load: deliver an audience of this many profiles to a batching webhook (<see cref="AudienceDelivery"/>).</summary>
    public int AudienceDelivery { get; set; }

    /// <summary>Instead of load: export an audience of this many profiles with a file destination, as CSV and as Parquet (<see cref="FileExportBench"/>).</summary>
    public int FileExport { get; set; }

    /// <summary>Instead of load: forward this many events with a Segment destination and measure events forwarded per second (<see cref="SegmentForwardBench"/>).</summary>
    public int SegmentForward { get; set; }

    /// <summary>The webhook (or Segment destination) batch size for <see cref="AudienceDelivery"/> and <see cref="SegmentForward"/>.</summary>
    public int BatchSize { get; set; } = 1000;

    public static LoadOptions Parse(string[] args)
    {
        var o = new LoadOptions();
        for (var i = 0; i < args.Length; i++)
        {
            var name = args[i];
            string Next() => i + 1 < args.Length ? args[++i] : throw new ArgumentException($"{name}: needs a value");
            double Number() => double.Parse(Next(), CultureInfo.InvariantCulture);
            switch (name)
            {
                case "--url": o.Url = Next().TrimEnd('/'); break;
                case "--write-key": o.WriteKey = Next(); break;
                case "--admin-token": o.AdminToken = Next(); break;
                case "--batch": o.Batch = (int)Number(); break;
                case "--connections": o.Connections = (int)Number(); break;
                case "--rate": o.Rate = Number(); break;
                case "--duration": o.Duration = Number(); break;
                case "--warmup": o.Warmup = Number(); break;
                case "--no-verify": o.Verify = false; break;
                case "--spawn": o.Spawn = Next(); break;
                case "--dll": o.Dll = Next(); break;
                case "--server-pid": o.ServerPid = (int)Number(); break;
                case "--server-log": o.ServerLog = Next(); break;
                case "--store-from": o.StoreFrom = Next(); break;
                case "--serve-arg": o.ServeArgs.Add(Next()); break;
                case "--catch-up-timeout": o.CatchUpTimeout = Number(); break;
                case "--label": o.Label = Next(); break;
                case "--seed": o.Seed = (int)Number(); break;
                case "--timeout": o.RequestTimeout = Number(); break;
                case "--no-retry": o.Retry = false; break;
                case "--retry-for": o.RetryFor = Number(); break;
                case "--latency-log": o.LatencyLog = Next(); break;
                case "--probe-audience": o.ProbeAudience = true; break;
                case "--probe-log": o.ProbeLog = Next(); break;
                case "--probe-webhook": o.ProbeWebhook = true; break;
                case "--audience-delivery": o.AudienceDelivery = (int)Number(); break;
                case "--batch-size": o.BatchSize = (int)Number(); break;
                case "--file-export": o.FileExport = (int)Number(); break;
                case "--segment-forward": o.SegmentForward = (int)Number(); break;
                case "-h" or "--help": throw new ArgumentException(Usage);
                default: throw new ArgumentException($"{name}: unknown flag\n{Usage}");
            }
        }

        if (o.Spawn is not (null or "tessera" or "ceiling")) { throw new ArgumentException("--spawn: tessera or ceiling"); }
        if (o.StoreFrom is not null && o.Spawn != "tessera") { throw new ArgumentException("--store-from: only with --spawn tessera"); }
        if (o.StoreFrom is not null && !File.Exists(o.StoreFrom)) { throw new ArgumentException($"--store-from: {o.StoreFrom} not found"); }
        if (o.Spawn == "ceiling") { o.Verify = false; }
        if (o.Batch is < 1 or > 2500) { throw new ArgumentException("--batch: 1 to 2500"); }
        if (o.Connections < 1) { throw new ArgumentException("--connections: at least 1"); }
        return o;
    }

    public const string Usage = """
        usage: Tessera.LoadGen [--url http://127.0.0.1:8080 | --spawn tessera|ceiling [--dll path] [--serve-arg FLAG]...] [--server-pid N] [--server-log FILE]
                               [--batch 100] [--connections 16] [--rate EVENTS_PER_S (0 = flat out)]
                               [--duration 20] [--warmup 3] [--write-key K] [--admin-token T] [--no-verify] [--no-retry] [--retry-for 120] [--catch-up-timeout 600] [--label L] [--probe-audience [--probe-log FILE]] [--probe-webhook]
                               [--latency-log FILE]
               Tessera.LoadGen --spawn tessera --audience-delivery 100000 [--batch-size 1000]
               Tessera.LoadGen --spawn tessera --file-export 100000
               Tessera.LoadGen --spawn tessera --segment-forward 100000 [--batch-size 1000]
        """;
}
