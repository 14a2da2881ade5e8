using System.Buffers.Binary;
using System.Text.Json;
using Tessera.Storage.Audiences;
using Tessera.Storage.Profiles;

namespace Tessera.Storage.DuckDb;

/// <summary>
/// The <c>event_properties</c> rows of a chunk's events, typed before the committer (<c>EventProperties.Write</c> on
/// each message as the engine parsed it, handed over by <c>ProfileEngine.Process</c>) and packed as bytes beside the event in
/// <see cref="StagedEvents"/>: the committer, the store's serial stage, then appends them without decompressing the stored
/// message and parsing it again, which was a fifth of its thread flat out (docs/benchmarks.md, "The event properties
/// typed before the committer").
/// </summary>
/// <remarks>
/// Per row: a byte (the kind's index in <see cref="Kinds"/>, or'd with <see cref="HasNumber"/> and
/// <see cref="HasInstant"/>), the name and the text each as a 7-bit-encoded length and their UTF-8, then the number
/// (<see cref="decimal"/>'s four 32-bit parts, little-endian) and the instant (ticks, 8, and offset in minutes, 2) when
/// there. Rows in the order <c>EventProperties.Write</c> gives them.
/// </remarks>
internal sealed class PropertyPacker
{
    internal const byte HasNumber = 0x08;
    internal const byte HasInstant = 0x10;
    internal const byte KindMask = 0x07;

    /// <summary>The kinds <see cref="Utf8TypedValue"/> gives, by the index a packed row holds.</summary>
    internal static readonly string[] Kinds = ["string", "number", "boolean", "object", "array", Utf8TypedValue.NullKind];

    private static readonly PropertyRowWriter<PropertyPacker> Add = static (packer, in row) => packer.Write(in row);

    /// <summary>A chunk's rows past this many bytes are not kept for the next chunk (large properties, rare).</summary>
    private const int KeptBufferBytes = 1 << 20;

    private byte[] _buffer = new byte[64 * 1024];
    private int _length;
    private (int Start, int End)[] _events = [];

    /// <summary>Starts a chunk of <paramref name="count"/> events, none packed yet; the rows of the last chunk are gone.</summary>
    public void Begin(int count)
    {
        _length = 0;
        if (_buffer.Length > KeptBufferBytes) { _buffer = new byte[64 * 1024]; }
        if (_events.Length < count) { _events = new (int, int)[Math.Max(count, 2 * _events.Length)]; }
        _events.AsSpan(0, count).Fill((0, -1));
    }

    /// <summary>
    /// Types and packs the rows of the chunk's event <paramref name="index"/> from its parsed message (none when the event
    /// has no name): the engine's document, while it holds it, so the message is not parsed a second time.
    /// </summary>
    public void Pack(int index, bool named, JsonElement message)
    {
        var start = _length;
        EventProperties.Write(named, message, this, Add);
        _events[index] = (start, _length);
    }

    /// <summary>
    /// The packed rows of the chunk's event <paramref name="index"/>, valid until the next <see cref="Begin"/>. The engine
    /// hands over every message it processes, so an event not packed is a caller's mistake.
    /// </summary>
    public ReadOnlySpan<byte> Packed(int index)
    {
        var (start, end) = _events[index];
        if (end < 0) { throw new InvalidOperationException($"The chunk's event {index} was not packed: the engine did not hand its message over."); }
        return _buffer.AsSpan(start, end - start);
    }

    private void Write(in PropertyRow row)
    {
        var value = row.Value;
        var most = 1 + 5 + row.Name.Length + 5 + value.Text.Length + 16 + 10;
        if (_buffer.Length - _length < most) { Array.Resize(ref _buffer, Math.Max(_buffer.Length * 2, _length + most)); }
        var span = _buffer.AsSpan();
        var at = _length;
        span[at++] = (byte)(KindIndex(value.Kind) | (value.Number.HasValue ? HasNumber : 0) | (value.Instant.HasValue ? HasInstant : 0));
        at = WriteBytes(span, at, row.Name);
        at = WriteBytes(span, at, value.Text);
        if (value.Number is { } number)
        {
            Span<int> parts = stackalloc int[4];
            decimal.GetBits(number, parts);
            foreach (var part in parts)
            {
                BinaryPrimitives.WriteInt32LittleEndian(span[at..], part);
                at += 4;
            }
        }

        if (value.Instant is { } instant)
        {
            BinaryPrimitives.WriteInt64LittleEndian(span[at..], instant.Ticks);
            BinaryPrimitives.WriteInt16LittleEndian(span[(at + 8)..], checked((short)instant.TotalOffsetMinutes));
            at += 10;
        }

        _length = at;
    }

    private static int KindIndex(string kind)
    {
        var index = Array.IndexOf(Kinds, kind);
        return index >= 0 ? index : throw new InvalidOperationException($"No packed form for the kind '{kind}'.");
    }

    private static int WriteBytes(Span<byte> span, int at, ReadOnlySpan<byte> bytes)
    {
        var length = (uint)bytes.Length;
        while (length >= 0x80)
        {
            span[at++] = (byte)(length | 0x80);
            length >>= 7;
        }

        span[at++] = (byte)length;
        bytes.CopyTo(span[at..]);
        return at + bytes.Length;
    }
}

/// <summary>Reads the rows <see cref="PropertyPacker"/> packed, in order; each row's spans point into the packed bytes.</summary>
internal ref struct PackedPropertyRows(ReadOnlySpan<byte> packed)
{
    private ReadOnlySpan<byte> _rest = packed;

    public PropertyRow Current { get; private set; }

    public readonly PackedPropertyRows GetEnumerator() => this;

    public bool MoveNext()
    {
        if (_rest.IsEmpty) { return false; }
        var flags = _rest[0];
        var at = 1;
        var name = ReadBytes(_rest, ref at);
        var text = ReadBytes(_rest, ref at);
        decimal? number = null;
        if ((flags & PropertyPacker.HasNumber) != 0)
        {
            Span<int> parts = stackalloc int[4];
            for (var i = 0; i < 4; i++) { parts[i] = BinaryPrimitives.ReadInt32LittleEndian(_rest[(at + 4 * i)..]); }
            number = new decimal(parts);
            at += 16;
        }

        DateTimeOffset? instant = null;
        if ((flags & PropertyPacker.HasInstant) != 0)
        {
            var ticks = BinaryPrimitives.ReadInt64LittleEndian(_rest[at..]);
            var offset = BinaryPrimitives.ReadInt16LittleEndian(_rest[(at + 8)..]);
            instant = new DateTimeOffset(ticks, TimeSpan.FromMinutes(offset));
            at += 10;
        }

        Current = new PropertyRow(name, new Utf8TypedValue(PropertyPacker.Kinds[flags & PropertyPacker.KindMask], text, number, instant));
        _rest = _rest[at..];
        return true;
    }

    private static ReadOnlySpan<byte> ReadBytes(ReadOnlySpan<byte> span, scoped ref int at)
    {
        var length = 0;
        for (var shift = 0; ; shift += 7)
        {
            var b = span[at++];
            length |= (b & 0x7F) << shift;
            if (b < 0x80) { break; }
        }

        var bytes = span.Slice(at, length);
        at += length;
        return bytes;
    }
}
