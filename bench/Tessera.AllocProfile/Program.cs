using Microsoft.Diagnostics.Tracing.Etlx;
using Microsoft.Diagnostics.Tracing.Parsers.Clr;

// Sums the AllocationTick events (one per ~100 KB allocated, with the type and the stack of the allocation that
// crossed the mark) of a .nettrace: by type, and inclusively by every Tessera, DuckDB or System.Text.Json method on
// the stacks; the large object heap's share by type and by the Tessera method nearest the allocation; and the
// collections by generation, reason and kind (GCStart). Usage: Tessera.AllocProfile TRACE.nettrace [rows]
if (args.Length is < 1 or > 2 || !File.Exists(args[0]))
{
    Console.Error.WriteLine("usage: Tessera.AllocProfile TRACE.nettrace [rows]  (a trace from dotnet-trace collect --profile gc-verbose)");
    return 2;
}

var rows = args.Length == 2 && int.TryParse(args[1], out var r) ? r : 30;
using var log = new TraceLog(TraceLog.CreateFromEventPipeDataFile(args[0]));
var byType = new Dictionary<string, long>(StringComparer.Ordinal);
var byMethod = new Dictionary<string, long>(StringComparer.Ordinal);
var large = new Dictionary<string, long>(StringComparer.Ordinal);
var collections = new Dictionary<string, int>(StringComparer.Ordinal);
long total = 0, largeTotal = 0;
var start = double.MaxValue;
var end = 0.0;
foreach (var e in log.Events)
{
    if (e is GCStartTraceData gc)
    {
        var key = $"gen{gc.Depth} {gc.Reason} {gc.Type}";
        collections[key] = collections.GetValueOrDefault(key) + 1;
        continue;
    }

    if (e is not GCAllocationTickTraceData tick) { continue; }
    var bytes = tick.AllocationAmount64;
    if (tick.AllocationKind == GCAllocationKind.Large)
    {
        largeTotal += bytes;
        var nearest = "";
        for (var frame = e.CallStack(); frame is not null; frame = frame.Caller)
        {
            if (frame.CodeAddress.FullMethodName is { } name && name.StartsWith("Tessera", StringComparison.Ordinal)) { nearest = name.Length > 120 ? name[..120] : name; break; }
        }

        var key = $"{tick.TypeName} from {nearest}";
        large[key] = large.GetValueOrDefault(key) + bytes;
    }

    total += bytes;
    start = Math.Min(start, e.TimeStampRelativeMSec);
    end = Math.Max(end, e.TimeStampRelativeMSec);
    byType[tick.TypeName] = byType.GetValueOrDefault(tick.TypeName) + bytes;
    var seen = new HashSet<string>(StringComparer.Ordinal);
    for (var frame = e.CallStack(); frame is not null; frame = frame.Caller)
    {
        var method = frame.CodeAddress.FullMethodName;
        if (string.IsNullOrEmpty(method) || !(method.StartsWith("Tessera", StringComparison.Ordinal) || method.Contains("DuckDB", StringComparison.Ordinal) || method.Contains("Json", StringComparison.Ordinal))) { continue; }
        if (seen.Add(method)) { byMethod[method] = byMethod.GetValueOrDefault(method) + bytes; }
    }
}

var seconds = Math.Max(end - start, 1) / 1000;
Console.WriteLine($"sampled allocations: {total / 1e6:F0} MB over {seconds:F1} s ({total / 1e6 / seconds:F1} MB/s)");
Console.WriteLine("-- by type");
foreach (var (type, bytes) in byType.OrderByDescending(t => t.Value).Take(rows)) { Console.WriteLine($"{bytes / 1e6,9:F1} MB  {bytes * 100.0 / total,5:F1} %  {type}"); }
Console.WriteLine("-- by method, inclusive");
foreach (var (method, bytes) in byMethod.OrderByDescending(m => m.Value).Take(rows * 2))
{
    Console.WriteLine($"{bytes / 1e6,9:F1} MB  {bytes * 100.0 / total,5:F1} %  {(method.Length > 160 ? method[..160] : method)}");
}

Console.WriteLine($"-- large object heap: {largeTotal / 1e6:F1} MB ({largeTotal / 1e6 / seconds:F1} MB/s), by type and the nearest Tessera method");
foreach (var (key, bytes) in large.OrderByDescending(l => l.Value).Take(rows)) { Console.WriteLine($"{bytes / 1e6,9:F1} MB  {key}"); }
Console.WriteLine($"-- collections over the trace: {collections.Values.Sum()}");
foreach (var (key, count) in collections.OrderByDescending(c => c.Value)) { Console.WriteLine($"{count,9}  {key}"); }

return 0;
