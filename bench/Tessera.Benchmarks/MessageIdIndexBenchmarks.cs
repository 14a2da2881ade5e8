using BenchmarkDotNet.Attributes;
using Tessera.Storage.Events;

namespace Tessera.Benchmarks;

/// <summary>
/// The embedded store's dedup index (<see cref="MessageIdIndex"/>, native open addressing) against the
/// <c>Dictionary&lt;UInt128, long&gt;</c> it replaced (the baseline, kept here as it was): filling it with a million
/// (source, messageId) hashes as the append path does, then looking each one up, and a million keys it does not hold
/// (what a new message asks). The managed bytes allocated are the dictionary's arrays, every one it grew through; the
/// native table's size is printed at setup.
/// </summary>
[MemoryDiagnoser]
public class MessageIdIndexBenchmarks
{
    private const int Entries = 1_000_000;
    private UInt128[] _keys = [];
    private UInt128[] _absent = [];
    private readonly DateTimeOffset _at = DateTimeOffset.UtcNow;
    private MessageIdIndex _filled = null!;
    private Dictionary<UInt128, long> _filledDictionary = [];

    [GlobalSetup]
    public void Setup()
    {
        _keys = [.. Enumerable.Range(0, Entries).Select(i => MessageIdIndex.Key("src_web", Guid.NewGuid().ToString()))];
        _absent = [.. Enumerable.Range(0, Entries).Select(i => MessageIdIndex.Key("src_web", Guid.NewGuid().ToString()))];
        _filled = new MessageIdIndex(TimeSpan.FromDays(7));
        foreach (var key in _keys) { _filled.Add(key, _at); }
        _filledDictionary = DictionaryFill();
        Console.WriteLine($"// native table: {_filled.Bytes / 1048576.0:F1} MB for {Entries:N0} entries ({_filled.Bytes / (double)Entries:F1} B an entry)");
    }

    [GlobalCleanup]
    public void Cleanup() => _filled.Dispose();

    [Benchmark(Baseline = true, OperationsPerInvoke = Entries, Description = "Dictionary<UInt128, long>: add, per entry")]
    public int DictionaryAdd() => DictionaryFill().Count;

    [Benchmark(OperationsPerInvoke = Entries, Description = "MessageIdIndex (native): add, per entry")]
    public int NativeAdd()
    {
        using var index = new MessageIdIndex(TimeSpan.FromDays(7));
        foreach (var key in _keys) { index.Add(key, _at); }
        return index.Count;
    }

    [Benchmark(OperationsPerInvoke = Entries, Description = "Dictionary<UInt128, long>: look up, per entry")]
    public int DictionaryContains()
    {
        var found = 0;
        var window = TimeSpan.FromDays(7).Ticks;
        foreach (var key in _keys)
        {
            if (_filledDictionary.TryGetValue(key, out var ticks) && _at.UtcTicks - ticks < window) { found++; }
        }

        return found;
    }

    [Benchmark(OperationsPerInvoke = Entries, Description = "MessageIdIndex (native): look up, per entry")]
    public int NativeContains()
    {
        var found = 0;
        foreach (var key in _keys)
        {
            if (_filled.Contains(key, _at)) { found++; }
        }

        return found;
    }

    [Benchmark(OperationsPerInvoke = Entries, Description = "Dictionary<UInt128, long>: look up a key not held (a new message), per entry")]
    public int DictionaryMiss() => _absent.Count(_filledDictionary.ContainsKey);

    [Benchmark(OperationsPerInvoke = Entries, Description = "MessageIdIndex (native): look up a key not held (a new message), per entry")]
    public int NativeMiss() => _absent.Count(key => _filled.Contains(key, _at));

    private Dictionary<UInt128, long> DictionaryFill()
    {
        var seen = new Dictionary<UInt128, long>();
        foreach (var key in _keys)
        {
            ref var ticks = ref System.Runtime.InteropServices.CollectionsMarshal.GetValueRefOrAddDefault(seen, key, out _);
            ticks = Math.Max(ticks, _at.UtcTicks);
        }

        return seen;
    }
}
