using System.Buffers;
using System.Buffers.Binary;
using System.Collections.Concurrent;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Tessera.Core.Collection;
using ZstdNet;

namespace Tessera.Storage.DuckDb;

/// <summary>A zstd dictionary trained on the store's own messages: its number, the first seq it compressed, its bytes.</summary>
internal sealed record RawDictionary(int Id, long FirstSeq, DateTimeOffset TrainedAt, int Samples, byte[] Bytes);

/// <summary>
/// How the DuckDB store keeps each message's raw JSON in <c>events.raw</c> (a BLOB): zstd with a dictionary trained on
/// the store's own messages, which takes the load generator's messages from ~670 bytes to ~150 and DuckDB's work per event
/// with it (docs/benchmarks.md, "The raw JSON compressed with a trained dictionary"). A value is one of:
/// <list type="bullet">
/// <item>the JSON text itself, as UTF-8 (its first byte is <c>{</c>): rows written before the first dictionary, and
/// every row of a store upgraded from the text column;</item>
/// <item><c>0x01</c>, the dictionary's number (4 bytes, little-endian), then a zstd frame made with it.</item>
/// </list>
/// The first dictionary is trained from the first <see cref="DuckDbStoreOptions.RawDictionarySamples"/> messages, and a
/// new one from the latest messages every <see cref="DuckDbStoreOptions.RawDictionaryEvery"/> events, so the
/// dictionary follows what the sources send; every dictionary is kept (in <c>raw_dictionaries</c>, committed with the
/// first rows it compressed), since rows compressed with it stay. Training runs off the append path. Encoding is
/// called by one writer at a time; decoding from any thread (the store's readers and DuckDB's, through
/// <c>tessera_raw</c>).
/// </summary>
internal sealed class RawCodec : IDisposable
{
    public const byte Compressed = 0x01;
    private const int HeaderLength = 5;
    // Level 1 (zstd's "fast" strategy): ~5 % larger than level 3 on the load generator's messages (81 bytes against 77),
    // and half the time on the engine's thread, where the tables of level 3's dictionary do not stay in the cache from
    // one message to the next (docs/benchmarks.md, "The event properties typed before the committer").
    private const int Level = 1;
    private const int DictionaryBytes = 32 * 1024;

    private readonly int _samplesWanted;
    private readonly long _every;
    private readonly ConcurrentDictionary<int, RawDictionary> _dictionaries = new();
    private readonly ConcurrentDictionary<int, ConcurrentBag<Decompressor>> _decompressors = new();
    // Each dictionary digested once for decompression (zstd's DDict), shared by its pooled decompressors.
    private readonly ConcurrentDictionary<int, DecompressionOptions> _decompression = new();
    private readonly List<byte[]> _samples = [];
    private RawDictionary? _current;
    private Compressor? _compressor;
    private CompressionOptions? _compression;
    private Task<RawDictionary?>? _training;
    private long _trainFromSeq;

    public RawCodec(int samples, long every)
    {
        _samplesWanted = samples;
        _every = every;
    }

    /// <summary>The dictionaries the store holds, as read at open; the newest becomes the current one.</summary>
    public void Load(IEnumerable<RawDictionary> dictionaries, long lastSeq)
    {
        var held = dictionaries.ToDictionary(d => d.Id);
        // One staged with a commit that failed is not in the file: its number will be given again.
        foreach (var id in _dictionaries.Keys.Where(id => !held.ContainsKey(id)).ToList())
        {
            _dictionaries.TryRemove(id, out _);
            if (_decompressors.TryRemove(id, out var pool)) { foreach (var d in pool) { d.Dispose(); } }
            if (_decompression.TryRemove(id, out var options)) { options.Dispose(); }
        }

        foreach (var d in held.Values) { _dictionaries[d.Id] = d; }
        _current = _dictionaries.Values.MaxBy(d => d.Id);
        if (_current is not null) { Use(_current); }
        else { DisposeCompressor(); }

        _trainFromSeq = NextTraining(lastSeq);
    }

    public int DictionaryCount => _dictionaries.Count;

    private long NextTraining(long lastSeq) =>
        _current is null ? lastSeq + 1 : Math.Max(lastSeq + 1, _current.FirstSeq + _every - _samplesWanted);

    /// <summary>
    /// A dictionary trained since the last call, to be committed with the first rows it compresses (so no row is ever
    /// committed before the dictionary it needs): from here on <see cref="Encode(RawJson, long, Span{byte})"/> uses it.
    /// </summary>
    public RawDictionary? TakeTrained(long firstSeq)
    {
        if (_training is not { IsCompleted: true } training) { return null; }
        _training = null;
        var trained = training.IsCompletedSuccessfully ? training.Result : null;
        if (trained is null)
        {
            // Too few or too alike samples for zstd's trainer: try again on the next ones.
            _trainFromSeq = firstSeq;
            return null;
        }

        var dictionary = trained with { Id = (_current?.Id ?? 0) + 1, FirstSeq = firstSeq };
        _dictionaries[dictionary.Id] = dictionary;
        _current = dictionary;
        Use(dictionary);
        _trainFromSeq = firstSeq + _every - _samplesWanted;
        return dictionary;
    }

    private void Use(RawDictionary dictionary)
    {
        DisposeCompressor();
        _compression = new CompressionOptions(dictionary.Bytes, Level);
        _compressor = new Compressor(_compression);
    }

    private void DisposeCompressor()
    {
        _compressor?.Dispose();
        _compression?.Dispose();
        _compressor = null;
        _compression = null;
    }

    /// <summary>The value to store for the message numbered <paramref name="seq"/>; also keeps it as a training sample when one is due.</summary>
    public byte[] Encode(RawJson raw, long seq)
    {
        var rented = ArrayPool<byte>.Shared.Rent(MaxEncodedLength(raw.Utf8Length));
        try
        {
            return rented.AsSpan(0, Encode(raw, seq, rented)).ToArray();
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(rented);
        }
    }

    /// <summary>The most bytes <see cref="Encode(RawJson, long, Span{byte})"/> writes for a message of <paramref name="utf8Length"/> bytes.</summary>
    public static int MaxEncodedLength(int utf8Length) => HeaderLength + Compressor.GetCompressBound(utf8Length);

    /// <summary>
    /// Writes the value to store for the message numbered <paramref name="seq"/> into <paramref name="destination"/> (at
    /// least <see cref="MaxEncodedLength"/> bytes) and returns its length; also keeps it as a training sample when one is due.
    /// </summary>
    public int Encode(RawJson raw, long seq, Span<byte> destination)
    {
        var utf8 = raw.Utf8.Span;
        if (seq >= _trainFromSeq && _training is null) { Sample(utf8); }
        if (_compressor is null || _current is null)
        {
            utf8.CopyTo(destination);
            return utf8.Length;
        }

        destination[0] = Compressed;
        BinaryPrimitives.WriteInt32LittleEndian(destination[1..], _current.Id);
        return HeaderLength + _compressor.Wrap(utf8, destination[HeaderLength..]);
    }

    private void Sample(ReadOnlySpan<byte> utf8)
    {
        var sample = WithoutIdentities(utf8);
        if (sample.Length > 0) { _samples.Add(sample); }
        if (_samples.Count < _samplesWanted) { return; }
        var samples = _samples.ToArray();
        _samples.Clear();
        _training = Task.Run(() => Train(samples));
    }

    /// <summary>
    /// The sample a dictionary learns from, without what identifies a person: a dictionary is kept as long as any row
    /// compressed with it, so it must not hold the identifiers and traits a deletion on request removes from the
    /// rows (the ids, the IP, every trait, emptied; values elsewhere in the message are kept, and may be learnt when
    /// frequent). A message that does not parse is not sampled.
    /// </summary>
    internal static byte[] WithoutIdentities(ReadOnlySpan<byte> utf8)
    {
        JsonObject message;
        try
        {
            if (JsonNode.Parse(utf8) is not JsonObject parsed) { return []; }
            message = parsed;
        }
        catch (JsonException)
        {
            return [];
        }

        foreach (var name in IdentityMembers)
        {
            if (message[name] is JsonValue) { message[name] = ""; }
        }

        if (message["traits"] is JsonObject) { message["traits"] = new JsonObject(); }
        if (message["context"] is JsonObject context)
        {
            if (context["ip"] is JsonValue) { context["ip"] = ""; }
            if (context["traits"] is JsonObject) { context["traits"] = new JsonObject(); }
        }

        return JsonSerializer.SerializeToUtf8Bytes(message);
    }

    private static readonly string[] IdentityMembers = ["userId", "anonymousId", "previousId", "groupId", "messageId"];

    /// <summary>A dictionary trained on <paramref name="samples"/> (as <see cref="WithoutIdentities"/> leaves them), or null when zstd's trainer cannot.</summary>
    internal static RawDictionary? Train(byte[][] samples)
    {
        try
        {
            var bytes = DictBuilder.TrainFromBuffer(samples, DictionaryBytes);
            return new RawDictionary(0, 0, DateTimeOffset.UtcNow, samples.Length, bytes);
        }
        catch (ZstdException)
        {
            return null;
        }
    }

    /// <summary>Waits for a training in progress (tests and benchmarks that need the dictionary in use).</summary>
    public Task TrainingDone => _training ?? Task.CompletedTask;

    /// <summary>The JSON text of a stored value, as UTF-8.</summary>
    public byte[] Decode(ReadOnlySpan<byte> value)
    {
        if (value.Length == 0 || value[0] != Compressed) { return value.ToArray(); }
        var output = Decompress(value, out var written);
        return written == output.Length ? output : output[..written];
    }

    /// <summary>Decompresses a compressed value into an array of the size its frame declares; <paramref name="written"/> is the length written.</summary>
    private byte[] Decompress(ReadOnlySpan<byte> value, out int written)
    {
        if (value.Length < HeaderLength) { throw new StoreException("A stored raw message is cut short: its header is incomplete."); }
        var id = BinaryPrimitives.ReadInt32LittleEndian(value[1..]);
        var frame = value[HeaderLength..];
        var (decompressor, pool) = Rent(id);
        try
        {
            var output = new byte[checked((int)Decompressor.GetDecompressedSize(frame))];
            written = decompressor.Unwrap(frame, output.AsSpan(), bufferSizePrecheck: false);
            return output;
        }
        catch (ZstdException e)
        {
            throw new StoreException($"A stored raw message does not decompress with dictionary {id}: {e.Message}");
        }
        finally
        {
            pool.Add(decompressor);
        }
    }

    /// <summary><see cref="Decode(ReadOnlySpan{byte})"/> of a BLOB as DuckDB.NET hands it over.</summary>
    public byte[] Decode(Stream value) => OverBytes(value, Decode);

    /// <summary><see cref="DecodeToString(ReadOnlySpan{byte})"/> of a BLOB as DuckDB.NET hands it over.</summary>
    public string DecodeToString(Stream value) => OverBytes(value, DecodeToString);

    /// <summary>A BLOB's bytes, copied out of DuckDB.NET's stream.</summary>
    public static byte[] Bytes(Stream value) => OverBytes(value, bytes => bytes.ToArray());

    private delegate T SpanReader<T>(ReadOnlySpan<byte> bytes);

    /// <summary>
    /// Reads a BLOB through <paramref name="read"/>: in place when DuckDB.NET hands over its vector's memory (an
    /// <see cref="UnmanagedMemoryStream"/>, valid while the row is), else copied first.
    /// </summary>
    private static unsafe T OverBytes<T>(Stream value, SpanReader<T> read)
    {
        if (value is UnmanagedMemoryStream native) { return read(new ReadOnlySpan<byte>(native.PositionPointer, checked((int)native.Length))); }
        using var copy = new MemoryStream();
        value.CopyTo(copy);
        return read(copy.GetBuffer().AsSpan(0, checked((int)copy.Length)));
    }

    public string DecodeToString(ReadOnlySpan<byte> value) =>
        value.Length == 0 || value[0] != Compressed ? Encoding.UTF8.GetString(value) : Encoding.UTF8.GetString(Decode(value));

    private (Decompressor Decompressor, ConcurrentBag<Decompressor> Pool) Rent(int id)
    {
        var pool = _decompressors.GetOrAdd(id, _ => []);
        if (pool.TryTake(out var decompressor)) { return (decompressor, pool); }
        if (!_dictionaries.TryGetValue(id, out var dictionary))
        {
            throw new StoreException($"A stored raw message names compression dictionary {id}, which the store does not hold.");
        }

        var options = _decompression.GetOrAdd(id, _ => new DecompressionOptions(dictionary.Bytes));
        return (new Decompressor(options), pool);
    }

    public void Dispose()
    {
        DisposeCompressor();
        foreach (var pool in _decompressors.Values)
        {
            while (pool.TryTake(out var d)) { d.Dispose(); }
        }

        foreach (var options in _decompression.Values) { options.Dispose(); }
    }
}
