using System.Buffers;
using System.Text;

namespace Tessera.Core.Collection;

/// <summary>
/// A request's validated events as bytes in <see cref="EventCodec"/>'s form, from the validation to the journal's
/// record (which is these bytes, the group's one after another), in an array a pool lends: no object per event
/// while the request waits for its fsync. As objects each event was a dozen of them (~1 KB) that outlived the GC's
/// youngest generation and were copied out of it (docs/benchmarks.md, "The request path as bytes, and the workstation GC"). Dispose returns
/// the array; one owner at a time.
/// </summary>
public sealed class EncodedEvents : IBufferWriter<byte>, IDisposable
{
    /// <summary>
    /// Its own pool: a request's body is rented from the shared pool at the same time, and the shared pool keeps only
    /// a few arrays of a size per core, so 64 requests in flight would allocate (large) arrays again and again.
    /// </summary>
    private static readonly ArrayPool<byte> Pool = ArrayPool<byte>.Create(maxArrayLength: 4 << 20, maxArraysPerBucket: 256);

    private byte[] _buffer;
    private int _length;
    private string? _sourceId;
    private byte[] _sourceIdUtf8 = [];

    /// <param name="capacity">The bytes expected (a request's body length and ~200 bytes an event covers its events); grows past it.</param>
    public EncodedEvents(int capacity = 4096) => _buffer = Pool.Rent(Math.Max(capacity, 256));

    /// <summary>The events encoded.</summary>
    public int Count { get; private set; }

    /// <summary>Their size in bytes.</summary>
    public int Length => _length;

    /// <summary>The events, one after another, as <see cref="EventCodec.Read"/> reads them.</summary>
    public ReadOnlySpan<byte> Bytes => _buffer.AsSpan(0, _length);

    /// <summary>Encodes the events given (for callers that hold objects: imports, tests).</summary>
    public static EncodedEvents Of(IEnumerable<CollectedEvent> events)
    {
        var encoded = new EncodedEvents();
        foreach (var e in events) { encoded.Add(e); }
        return encoded;
    }

    public void Add(CollectedEvent e)
    {
        EventCodec.Write(e, this);
        Count++;
    }

    /// <summary>Decodes every event into <paramref name="into"/>.</summary>
    public void DecodeInto(List<CollectedEvent> into) => EventCodec.Read(Bytes, Count, into);

    /// <summary>The last source id's UTF-8, kept: every event of a request has the same.</summary>
    internal ReadOnlySpan<byte> SourceIdUtf8(string sourceId)
    {
        if (!ReferenceEquals(sourceId, _sourceId))
        {
            _sourceIdUtf8 = Encoding.UTF8.GetBytes(sourceId);
            _sourceId = sourceId;
        }

        return _sourceIdUtf8;
    }

    /// <summary>An event written through <see cref="IBufferWriter{T}"/> by the validator is complete.</summary>
    internal void Added() => Count++;

    void IBufferWriter<byte>.Advance(int count)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(count);
        if (_length + count > _buffer.Length) { throw new InvalidOperationException("advanced past the span given"); }
        _length += count;
    }

    Memory<byte> IBufferWriter<byte>.GetMemory(int sizeHint)
    {
        Ensure(sizeHint);
        return _buffer.AsMemory(_length);
    }

    Span<byte> IBufferWriter<byte>.GetSpan(int sizeHint)
    {
        Ensure(sizeHint);
        return _buffer.AsSpan(_length);
    }

    private void Ensure(int sizeHint)
    {
        ObjectDisposedException.ThrowIf(_buffer.Length == 0, this);
        var needed = _length + Math.Max(sizeHint, 1);
        if (needed <= _buffer.Length) { return; }
        var larger = Pool.Rent(Math.Max(needed, _buffer.Length * 2));
        _buffer.AsSpan(0, _length).CopyTo(larger);
        Pool.Return(_buffer);
        _buffer = larger;
    }

    public void Dispose()
    {
        if (_buffer.Length == 0) { return; }
        Pool.Return(_buffer);
        _buffer = [];
        _length = 0;
        Count = 0;
    }
}
