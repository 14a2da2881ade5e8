using BenchmarkDotNet.Attributes;
using Tessera.Core.Collection;
using Tessera.Storage.DuckDb;

namespace Tessera.Benchmarks;

/// <summary>
/// What keeping the raw JSON compressed costs in CPU, per event (<see cref="RawCodec"/>): encoding on the append path
/// (the indexer's thread, before the committer), decoding for the store's readers and for <c>tessera_raw</c> in SQL. A
/// dictionary trained, as the store does, on the first 2,000 of the load generator's messages; measured on the
/// 20,000 that follow.
/// </summary>
[MemoryDiagnoser]
public class RawCodecBenchmarks
{
    private const int Samples = 2_000;
    private const int Measured = 20_000;
    private RawCodec _codec = null!;
    private RawJson[] _messages = [];
    private byte[][] _stored = [];
    private byte[][] _samples = [];

    [GlobalSetup]
    public void Setup()
    {
        var events = Rows.Events(Samples + Measured, "codec");
        _codec = new RawCodec(Samples, long.MaxValue / 2);
        _codec.Load([], lastSeq: 0);
        for (var i = 0; i < Samples; i++) { _codec.Encode(events[i].Raw, i + 1); }
        _codec.TrainingDone.GetAwaiter().GetResult();
        _ = _codec.TakeTrained(Samples + 1) ?? throw new InvalidOperationException("no dictionary was trained");
        _samples = [.. events.Take(Samples).Select(e => RawCodec.WithoutIdentities(e.Raw.Utf8.Span))];
        _messages = [.. events.Skip(Samples).Select(e => e.Raw)];
        _stored = [.. _messages.Select((m, i) => _codec.Encode(m, Samples + 1 + i))];
        Console.WriteLine($"// {_messages.Average(m => m.Utf8Length):F0} B of text a message, {_stored.Average(s => s.Length):F0} B stored");
    }

    [Benchmark(Description = "train a dictionary from 2,000 samples (off the append path, once per 1,000,000 events)")]
    public int Train() => RawCodec.Train(_samples)?.Bytes.Length ?? throw new InvalidOperationException("no dictionary was trained");

    [GlobalCleanup]
    public void Cleanup() => _codec.Dispose();

    [Benchmark(OperationsPerInvoke = Measured, Description = "encode (zstd 1 with the trained dictionary), per event")]
    public int Encode()
    {
        var total = 0;
        for (var i = 0; i < _messages.Length; i++) { total += _codec.Encode(_messages[i], Samples + 1 + i).Length; }
        return total;
    }

    [Benchmark(OperationsPerInvoke = Measured, Description = "decode to UTF-8 (the store's readers), per event")]
    public int Decode()
    {
        var total = 0;
        foreach (var stored in _stored) { total += _codec.Decode(stored).Length; }
        return total;
    }

    [Benchmark(OperationsPerInvoke = Measured, Description = "decode to a string (tessera_raw in SQL), per event")]
    public int DecodeToString()
    {
        var total = 0;
        foreach (var stored in _stored) { total += _codec.DecodeToString(stored).Length; }
        return total;
    }
}
