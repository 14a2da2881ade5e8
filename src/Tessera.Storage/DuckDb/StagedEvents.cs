using System.Buffers.Binary;
using System.Text;
using Tessera.Core.Collection;
using Tessera.Core.Profiles;

namespace Tessera.Storage.DuckDb;

/// <summary>
/// The events of one staged append as the committer writes them (<c>events</c> and <c>event_properties</c>): each one's
/// seq, typed columns, profile id, stored raw value (compressed by <see cref="RawCodec"/>, or the text for a file that
/// keeps it as text) and typed property rows packed into 32 KB arrays kept for reuse, instead of the events themselves.
/// Events wait here between the engine and the commit, up to 50,000 of them when a checkpoint holds the committer, and
/// as objects (the message, its strings, its JSON, the stored value, the engine's result) they were ~2.5 KB each on the
/// heap, and the heap the GC kept around them most of the server's memory flat out; packed they are ~430 bytes (~130 of
/// it the load generator's 4.6 property rows an event), in arrays the GC does not trace and the pool hands out again
/// (docs/benchmarks.md, "The backlog packed").
/// </summary>
/// <remarks>
/// Per event, little-endian: seq (8), type (1), then the four times (<see cref="DateTimeOffset"/> ticks, 8, and offset
/// in minutes, 2; the two optional ones after a byte saying whether they are there), then eight strings as a length (4,
/// -1 for null) and their UTF-8 (message id, source, event, user id, anonymous id, group id, previous id, profile id),
/// then the stored raw value as a length and its bytes, then the event's <c>event_properties</c> rows, typed here
/// (<see cref="PropertyPacker"/>), as a length and their bytes; an event never spans two arrays. Written once, read once
/// (<see cref="Release"/> gives the arrays back), both under the store's order: the engine packs, the committer reads.
/// </remarks>
internal sealed class StagedEvents
{
    private const int FixedBytes = 8 + 1 + 10 + 1 + 10 + 1 + 10 + 10;
    private const int Strings = 8;

    /// <summary>
    /// The size of the arrays events are packed into: under the large object heap's threshold (85,000 bytes), so an array
    /// dropped by a full pool is collected as any young object is, not left in that heap until a full collection; an
    /// event that does not fit in one (Segment's 32 KB event with long ids) gets an array of its own.
    /// </summary>
    internal const int BlockBytes = 32 * 1024;

    /// <summary>Arrays kept for reuse, at most: 32 MB, more than a full backlog (50,000 events, ~22 MB) packs into.</summary>
    private const int MaxPooledBlocks = 1024;

    private static readonly Lock PoolGate = new();
    private static readonly Stack<byte[]> Pool = new();

    private List<(byte[] Block, int Length)>? _blocks;

    private StagedEvents(List<(byte[] Block, int Length)> blocks) => _blocks = blocks;

    /// <summary>
    /// Packs <paramref name="events"/> with their profile ids from <paramref name="processed"/> (same order), their raw
    /// JSON encoded by <paramref name="codec"/> (null: kept as the text), and their property rows from
    /// <paramref name="properties"/> (packed there by index since its <see cref="PropertyPacker.Begin"/>, while the engine
    /// held each message parsed).
    /// </summary>
    public static StagedEvents Pack((long Seq, CollectedEvent Event)[] events, IReadOnlyList<ProcessedEvent> processed, RawCodec? codec, PropertyPacker properties)
    {
        var blocks = new List<(byte[] Block, int Length)>();
        byte[]? block = null;
        var at = 0;
        for (var i = 0; i < events.Length; i++)
        {
            var e = events[i].Event;
            var profileId = processed[i].ProfileId;
            var raw = e.Raw.Utf8Length;
            var packedProperties = properties.Packed(i);
            // A bound, not the size: the strings' most UTF-8 from their length (counting them exactly would encode each twice).
            var most = FixedBytes + Strings * 4
                + MostUtf8(e.MessageId) + MostUtf8(e.SourceId) + MostUtf8(e.Event) + MostUtf8(e.UserId) + MostUtf8(e.AnonymousId)
                + MostUtf8(e.GroupId) + MostUtf8(e.PreviousId) + MostUtf8(profileId)
                + 4 + (codec is null ? raw : RawCodec.MaxEncodedLength(raw))
                + 4 + packedProperties.Length;
            if (block is null || block.Length - at < most)
            {
                if (block is not null) { blocks.Add((block, at)); }
                (block, at) = (most > BlockBytes ? new byte[most] : Rent(), 0);
            }

            at = Write(block, at, events[i].Seq, e, profileId, codec, packedProperties);
        }

        if (block is not null) { blocks.Add((block, at)); }
        return new StagedEvents(blocks);
    }

    private static byte[] Rent()
    {
        lock (PoolGate)
        {
            if (Pool.TryPop(out var block)) { return block; }
        }

        return GC.AllocateUninitializedArray<byte>(BlockBytes);
    }

    /// <summary>Gives the arrays back for reuse (those of the standard size, up to <see cref="MaxPooledBlocks"/>); the events cannot be read after it.</summary>
    public void Release()
    {
        if (Interlocked.Exchange(ref _blocks, null) is not { } blocks) { return; }
        lock (PoolGate)
        {
            foreach (var (block, _) in blocks)
            {
                if (block.Length == BlockBytes && Pool.Count < MaxPooledBlocks) { Pool.Push(block); }
            }
        }
    }

    private static int MostUtf8(string? value) => value is null ? 0 : Encoding.UTF8.GetMaxByteCount(value.Length);

    private static int Write(byte[] buffer, int at, long seq, CollectedEvent e, string? profileId, RawCodec? codec, ReadOnlySpan<byte> properties)
    {
        var span = buffer.AsSpan();
        BinaryPrimitives.WriteInt64LittleEndian(span[at..], seq);
        span[at + 8] = (byte)e.Type;
        at += 9;
        at = WriteTime(span, at, e.Timestamp);
        at = WriteOptionalTime(span, at, e.OriginalTimestamp);
        at = WriteOptionalTime(span, at, e.SentAt);
        at = WriteTime(span, at, e.ReceivedAt);
        foreach (var text in (ReadOnlySpan<string?>)[e.MessageId, e.SourceId, e.Event, e.UserId, e.AnonymousId, e.GroupId, e.PreviousId, profileId])
        {
            if (text is null)
            {
                BinaryPrimitives.WriteInt32LittleEndian(span[at..], -1);
                at += 4;
                continue;
            }

            var written = Encoding.UTF8.GetBytes(text, span[(at + 4)..]);
            BinaryPrimitives.WriteInt32LittleEndian(span[at..], written);
            at += 4 + written;
        }

        int length;
        if (codec is not null) { length = codec.Encode(e.Raw, seq, span[(at + 4)..]); }
        else
        {
            var utf8 = e.Raw.Utf8.Span;
            utf8.CopyTo(span[(at + 4)..]);
            length = utf8.Length;
        }

        BinaryPrimitives.WriteInt32LittleEndian(span[at..], length);
        at += 4 + length;
        BinaryPrimitives.WriteInt32LittleEndian(span[at..], properties.Length);
        properties.CopyTo(span[(at + 4)..]);
        return at + 4 + properties.Length;
    }

    private static int WriteTime(Span<byte> span, int at, DateTimeOffset time)
    {
        BinaryPrimitives.WriteInt64LittleEndian(span[at..], time.Ticks);
        BinaryPrimitives.WriteInt16LittleEndian(span[(at + 8)..], checked((short)time.TotalOffsetMinutes));
        return at + 10;
    }

    private static int WriteOptionalTime(Span<byte> span, int at, DateTimeOffset? time)
    {
        span[at] = time.HasValue ? (byte)1 : (byte)0;
        return WriteTime(span, at + 1, time.GetValueOrDefault());
    }

    public Enumerator GetEnumerator() => new(_blocks ?? throw new InvalidOperationException("The staged events were released."));

    /// <summary>Reads the packed events in order; each <see cref="Current"/> is valid until <see cref="Release"/>.</summary>
    public ref struct Enumerator(List<(byte[] Block, int Length)> blocks)
    {
        private int _block;
        private int _at;

        public StagedEvent Current { get; private set; }

        public bool MoveNext()
        {
            while (_block < blocks.Count && _at >= blocks[_block].Length) { (_block, _at) = (_block + 1, 0); }
            if (_block >= blocks.Count) { return false; }
            var (buffer, length) = blocks[_block];
            var span = buffer.AsSpan(0, length);
            var at = _at + 9;
            // Arguments are evaluated left to right: each read moves `at` past its field, in the packed order.
            Current = new StagedEvent(
                BinaryPrimitives.ReadInt64LittleEndian(span[_at..]), (MessageType)span[_at + 8],
                ReadTime(span, ref at), ReadOptionalTime(span, ref at), ReadOptionalTime(span, ref at), ReadTime(span, ref at),
                MessageId: ReadText(buffer, ref at), SourceId: ReadText(buffer, ref at), Event: ReadText(buffer, ref at),
                UserId: ReadText(buffer, ref at), AnonymousId: ReadText(buffer, ref at), GroupId: ReadText(buffer, ref at),
                PreviousId: ReadText(buffer, ref at), ProfileId: ReadText(buffer, ref at), Raw: ReadText(buffer, ref at).Memory,
                Properties: ReadText(buffer, ref at).Memory);
            _at = at;
            return true;
        }

        private static DateTimeOffset ReadTime(ReadOnlySpan<byte> span, ref int at)
        {
            var ticks = BinaryPrimitives.ReadInt64LittleEndian(span[at..]);
            var offset = BinaryPrimitives.ReadInt16LittleEndian(span[(at + 8)..]);
            at += 10;
            return new DateTimeOffset(ticks, TimeSpan.FromMinutes(offset));
        }

        private static DateTimeOffset? ReadOptionalTime(ReadOnlySpan<byte> span, ref int at)
        {
            var present = span[at] == 1;
            at++;
            var time = ReadTime(span, ref at);
            return present ? time : null;
        }

        private static Utf8Text ReadText(byte[] buffer, ref int at)
        {
            var textLength = BinaryPrimitives.ReadInt32LittleEndian(buffer.AsSpan(at));
            at += 4;
            if (textLength < 0) { return default; }
            var text = new Utf8Text(buffer.AsMemory(at, textLength));
            at += textLength;
            return text;
        }
    }
}

/// <summary>A string column's value as UTF-8, or null (<c>default</c>).</summary>
internal readonly struct Utf8Text(ReadOnlyMemory<byte> utf8)
{
    private readonly bool _present = true;

    public bool IsNull => !_present;

    public ReadOnlySpan<byte> Span => utf8.Span;

    public ReadOnlyMemory<byte> Memory => utf8;
}

/// <summary>One packed event (<see cref="StagedEvents"/>); its text, raw value and property rows (<see cref="PackedPropertyRows"/>) point into the packed arrays.</summary>
internal readonly record struct StagedEvent(
    long Seq,
    MessageType Type,
    DateTimeOffset Timestamp,
    DateTimeOffset? OriginalTimestamp,
    DateTimeOffset? SentAt,
    DateTimeOffset ReceivedAt,
    Utf8Text MessageId,
    Utf8Text SourceId,
    Utf8Text Event,
    Utf8Text UserId,
    Utf8Text AnonymousId,
    Utf8Text GroupId,
    Utf8Text PreviousId,
    Utf8Text ProfileId,
    ReadOnlyMemory<byte> Raw,
    ReadOnlyMemory<byte> Properties);
