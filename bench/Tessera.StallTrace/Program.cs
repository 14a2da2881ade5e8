using System.Globalization;
using Microsoft.Diagnostics.Tracing;
using Microsoft.Diagnostics.Tracing.Etlx;
using Microsoft.Diagnostics.Tracing.Parsers.Clr;

// Usage: Tessera.StallTrace TRACE.nettrace LATENCY-LOG [SLOW-MS]
// TRACE: `dotnet-trace collect` with the runtime's GC (0x1) and contention (0x4000) keywords; LATENCY-LOG: the load
// generator's --latency-log (UTC time due, latency ms, status). Prints, in time order over the trace's span: every GC
// that paused the process 5 ms or more, every wait of 5 ms or more for a lock (with the waiting thread's stack), and
// every 100 ms window whose slowest 200 took SLOW-MS (default 40) or more, the window's requests all answered at once.
if (args.Length < 2)
{
    Console.Error.WriteLine("usage: Tessera.StallTrace TRACE.nettrace LATENCY-LOG [SLOW-MS]");
    return 2;
}

var slowMs = args.Length > 2 ? double.Parse(args[2], CultureInfo.InvariantCulture) : 40;
using var log = new TraceLog(TraceLog.CreateFromEventPipeDataFile(args[0]));
var origin = log.SessionStartTime.ToUniversalTime();
var lines = new List<(DateTime At, string Text)>();
var gcStarts = new Dictionary<int, (DateTime At, string What)>();
var waits = new Dictionary<int, string>();
var gcPauses = new List<double>();
foreach (var e in log.Events)
{
    var at = origin.AddMilliseconds(e.TimeStampRelativeMSec);
    switch (e)
    {
        case GCStartTraceData start:
            gcStarts[start.Count] = (at, $"gen{start.Depth} {start.Type} ({start.Reason})");
            break;
        case GCEndTraceData stopped when gcStarts.Remove(stopped.Count, out var begun):
            var ms = (at - begun.At).TotalMilliseconds;
            gcPauses.Add(ms);
            if (ms >= 5) { lines.Add((begun.At, $"GC #{stopped.Count} {begun.What}: {ms:F1} ms")); }
            break;
        case ContentionStartTraceData:
            waits[e.ThreadID] = Stack(e);
            break;
        case ContentionStopTraceData stop when stop.DurationNs >= 5_000_000:
            lines.Add((at.AddMilliseconds(-stop.DurationNs / 1e6), $"thread {e.ThreadID} waited {stop.DurationNs / 1e6:F1} ms for a lock, at\n        {waits.GetValueOrDefault(e.ThreadID, "?")}"));
            break;
    }
}

var traceEnd = origin.AddMilliseconds(log.SessionEndTimeRelativeMSec);
var slow = new SortedDictionary<DateTime, (double Ms, DateTime Answered)>();
foreach (var line in File.ReadLines(args[1]))
{
    var parts = line.Split(' ');
    var due = DateTime.Parse(parts[0], CultureInfo.InvariantCulture, DateTimeStyles.AdjustToUniversal | DateTimeStyles.AssumeUniversal);
    var ms = double.Parse(parts[1], CultureInfo.InvariantCulture);
    if (due < origin || due > traceEnd || ms < slowMs) { continue; }
    var window = new DateTime(due.Ticks - (due.Ticks % (TimeSpan.TicksPerSecond / 10)), DateTimeKind.Utc);
    if (!slow.TryGetValue(window, out var worst) || ms > worst.Ms) { slow[window] = (ms, due.AddMilliseconds(ms)); }
}

lines.AddRange(slow.Select(s => (s.Key, $"slowest 200 due in these 100 ms: {s.Value.Ms:F1} ms (answered {s.Value.Answered:HH:mm:ss.fff})")));
gcPauses.Sort();
Console.WriteLine($"trace {origin:HH:mm:ss.fff} to {traceEnd:HH:mm:ss.fff} UTC: {gcPauses.Count} GCs, pause p50 {Quantile(gcPauses, 0.5):F1} ms, max {Quantile(gcPauses, 1):F1} ms; "
    + $"{lines.Count(l => l.Text.StartsWith("thread", StringComparison.Ordinal))} lock waits of 5 ms or more; {slow.Count} windows with a 200 of {slowMs} ms or more");
foreach (var (at, text) in lines.OrderBy(l => l.At)) { Console.WriteLine($"{at:HH:mm:ss.fff} {text}"); }
return 0;

static double Quantile(List<double> sorted, double q) => sorted.Count == 0 ? 0 : sorted[Math.Min(sorted.Count - 1, (int)(q * sorted.Count))];

static string Stack(TraceEvent e)
{
    var frames = new List<string>();
    for (var frame = e.CallStack(); frame is not null && frames.Count < 12; frame = frame.Caller)
    {
        var name = frame.CodeAddress.FullMethodName;
        if (string.IsNullOrEmpty(name) || name.StartsWith("System.Threading.Lock", StringComparison.Ordinal) || name.StartsWith("System.Diagnostics.Tracing", StringComparison.Ordinal)) { continue; }
        frames.Add(name.Length > 140 ? name[..140] : name);
    }

    return string.Join("\n        <- ", frames);
}
