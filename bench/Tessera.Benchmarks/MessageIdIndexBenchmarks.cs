using BenchmarkDotNet.Attributes;
using Tessera.Storage.Events;

namespace Tessera.Benchmarks;

/// <summary>
/// The embedded store's dedup index (<see cref="MessageIdIndex"/>) at the size a 60 s flat-out run reaches (3 million
/// message ids): as shipped (a table of the recent 183,500 pairs, older ones in sorted runs in files, a few bytes each
/// in memory) against the table alone (the index before the runs: one open-addressing table that doubles, here by
/// letting its table grow to 2^24 slots). Filling it as the append path does (merges of runs included), looking each
/// key up (a resend: a run that holds it reads its file), and looking up keys it does not hold (what every new message
/// asks). The native memory and file bytes of each are printed at setup; the Dictionary it replaced before that is in
/// docs/benchmarks.md ("The dedup index in native memory"), the runs held in memory in "The dedup index's runs in
/// files".
/// </summary>
public class MessageIdIndexBenchmarks
{
    private const int Entries = 3_000_000;
    private UInt128[] _keys = [];
    private UInt128[] _absent = [];
    private readonly DateTimeOffset _at = DateTimeOffset.UtcNow;
    private readonly string _directory = Directory.CreateTempSubdirectory("tessera-dedup-bench").FullName;
    private MessageIdIndex _filled = null!;

    /// <summary>The table's largest size: 2^18 as shipped, 2^24 for the table alone (it never fills at 3 million).</summary>
    [Params(1 << 18, 1 << 24)]
    public int MaxRecentSlots { get; set; }

    [GlobalSetup]
    public void Setup()
    {
        _keys = [.. Enumerable.Range(0, Entries).Select(i => MessageIdIndex.Key("src_web", Guid.NewGuid().ToString()))];
        _absent = [.. Enumerable.Range(0, Entries).Select(i => MessageIdIndex.Key("src_web", Guid.NewGuid().ToString()))];
        // Filled once with each add timed: the longest is the time the indexer stalls on one (the table's last doubling,
        // or moving the table to a run; merges run in the background).
        _filled = Fill(timeEachAdd: true, out var longest);
        Console.WriteLine($"// max recent slots {MaxRecentSlots}: {_filled.Bytes / 1048576.0:F1} MB for {Entries:N0} entries ({_filled.Bytes / (double)Entries:F1} B an entry), {_filled.Runs} runs, {_filled.FileBytes / 1048576.0:F1} MB in files; longest add {longest.TotalMilliseconds:F0} ms");
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        _filled.Dispose();
        Directory.Delete(_directory, recursive: true);
    }

    [Benchmark(OperationsPerInvoke = Entries, Description = "add, per entry")]
    public int Add()
    {
        using var index = Fill(timeEachAdd: false, out _);
        return index.Count;
    }

    [Benchmark(OperationsPerInvoke = Entries, Description = "look up a key held (a resend), per entry")]
    public int Contains() => _keys.Count(key => _filled.Contains(key, _at));

    [Benchmark(OperationsPerInvoke = Entries, Description = "look up a key not held (a new message), per entry")]
    public int Miss() => _absent.Count(key => _filled.Contains(key, _at));

    /// <summary>An index holding every key; with <paramref name="timeEachAdd"/>, the longest single add in <paramref name="longest"/>.</summary>
    private MessageIdIndex Fill(bool timeEachAdd, out TimeSpan longest)
    {
        var index = new MessageIdIndex(TimeSpan.FromDays(7), _directory, MaxRecentSlots);
        longest = TimeSpan.Zero;
        foreach (var key in _keys)
        {
            if (!timeEachAdd)
            {
                index.Add(key, _at);
                continue;
            }

            var started = System.Diagnostics.Stopwatch.GetTimestamp();
            index.Add(key, _at);
            var took = System.Diagnostics.Stopwatch.GetElapsedTime(started);
            if (took > longest) { longest = took; }
        }

        // The merges run in the background: waited for, so the time per entry includes them.
        index.WaitForRuns();
        return index;
    }
}
