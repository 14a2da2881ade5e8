using System.IO.Compression;
using System.Text.Json;
using BenchmarkDotNet.Attributes;
using Tessera.Core.Collection;
using Tessera.Core.Identity;

namespace Tessera.Benchmarks;

/// <summary>
/// The CPU cost of one 100-event batch before storage (gzip, JSON parse, validation), and of the engine's reading of
/// each message's identifiers.
/// </summary>
public class CollectionBenchmarks
{
    private byte[] _plain = [];
    private byte[] _gzipped = [];
    private JsonDocument _document = null!;
    private readonly byte[] _buffer = new byte[500 * 1024];
    private readonly DateTimeOffset _now = DateTimeOffset.UtcNow;
    private readonly IdentifierExtractor _extractor = new(IdentityRules.Default);

    [GlobalSetup]
    public void Setup()
    {
        _plain = Rows.Batch(100);
        using var compressed = new MemoryStream();
        using (var gzip = new GZipStream(compressed, CompressionLevel.Fastest)) { gzip.Write(_plain); }
        _gzipped = compressed.ToArray();
        _document = JsonDocument.Parse(_plain);
        Console.WriteLine($"// batch of 100: {_plain.Length} bytes plain, {_gzipped.Length} bytes gzipped");
    }

    [Benchmark(Description = "JsonDocument.Parse, 100-event batch")]
    public int Parse()
    {
        using var document = JsonDocument.Parse(_plain);
        return document.RootElement.GetProperty("batch"u8).GetArrayLength();
    }

    [Benchmark(Description = "gunzip + JsonDocument.Parse, 100-event batch")]
    public int GunzipAndParse()
    {
        using var input = new GZipStream(new MemoryStream(_gzipped), CompressionMode.Decompress);
        var length = 0;
        int read;
        while ((read = input.Read(_buffer, length, _buffer.Length - length)) > 0) { length += read; }
        using var document = JsonDocument.Parse(_buffer.AsMemory(0, length));
        return document.RootElement.GetProperty("batch"u8).GetArrayLength();
    }

    [Benchmark(OperationsPerInvoke = 100, Description = "MessageValidator.TryValidate, per message")]
    public int Validate()
    {
        var valid = 0;
        foreach (var message in _document.RootElement.GetProperty("batch"u8).EnumerateArray())
        {
            if (MessageValidator.TryValidate(message, null, Rows.SourceId, _now, null, out _, out _)) { valid++; }
        }

        return valid;
    }

    [Benchmark(OperationsPerInvoke = 100, Description = "IdentifierExtractor.Extract (default rules), per message")]
    public int ExtractIdentifiers()
    {
        var found = 0;
        foreach (var message in _document.RootElement.GetProperty("batch"u8).EnumerateArray())
        {
            found += _extractor.Extract(message).Identifiers.Count;
        }

        return found;
    }

    [GlobalCleanup]
    public void Cleanup() => _document.Dispose();
}
