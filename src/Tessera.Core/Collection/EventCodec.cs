using System.Buffers;
using System.Buffers.Binary;
using System.Text;

namespace Tessera.Core.Collection;

/// <summary>
/// Events in a compact binary form: what the journal's records hold and what a request's validated events are
/// kept as until they are journaled (<see cref="EncodedEvents"/>). Per event: the type (one byte), a byte of flags
/// saying which optional fields follow, then the strings as UTF-8 with a varint length (messageId, sourceId, the
/// optional event, userId, anonymousId, groupId, previousId), the times as clock ticks plus offset minutes
/// (timestamp, the optional originalTimestamp and sentAt, receivedAt), and the raw JSON with its varint length.
/// About the raw JSON's size plus 60 bytes and the ids.
/// </summary>
public static class EventCodec
{
    internal const byte HasEvent = 1, HasUserId = 2, HasAnonymousId = 4, HasGroupId = 8, HasPreviousId = 16, HasOriginal = 32, HasSentAt = 64;

    /// <summary>Writes <paramref name="e"/> in the codec's form.</summary>
    public static void Write(CollectedEvent e, IBufferWriter<byte> output)
    {
        var flags = (byte)((e.Event is null ? 0 : HasEvent) | (e.UserId is null ? 0 : HasUserId) | (e.AnonymousId is null ? 0 : HasAnonymousId)
            | (e.GroupId is null ? 0 : HasGroupId) | (e.PreviousId is null ? 0 : HasPreviousId)
            | (e.OriginalTimestamp is null ? 0 : HasOriginal) | (e.SentAt is null ? 0 : HasSentAt));
        WriteHead(output, e.Type, flags);
        WriteString(output, e.MessageId);
        WriteString(output, e.SourceId);
        if (e.Event is not null) { WriteString(output, e.Event); }
        if (e.UserId is not null) { WriteString(output, e.UserId); }
        if (e.AnonymousId is not null) { WriteString(output, e.AnonymousId); }
        if (e.GroupId is not null) { WriteString(output, e.GroupId); }
        if (e.PreviousId is not null) { WriteString(output, e.PreviousId); }
        WriteTime(output, e.Timestamp);
        if (e.OriginalTimestamp is { } original) { WriteTime(output, original); }
        if (e.SentAt is { } sentAt) { WriteTime(output, sentAt); }
        WriteTime(output, e.ReceivedAt);
        var raw = e.Raw;
        if (raw.IsUtf8) { WriteBytes(output, raw.Utf8.Span); }
        else { WriteString(output, raw.ToString()); }
    }

    /// <summary>
    /// Decodes exactly <paramref name="count"/> events that fill <paramref name="events"/>; throws
    /// <see cref="FormatException"/> when they do not parse or bytes are left over.
    /// </summary>
    public static void Read(ReadOnlySpan<byte> events, int count, List<CollectedEvent> into)
    {
        var reader = new Reader(events);
        ReadEvents(ref reader, count, into);
        if (!reader.AtEnd) { throw new FormatException($"{reader.Remaining} bytes left after {count} events"); }
    }

    /// <summary>A journal record's payload: the varint event count, then the events.</summary>
    public static void ReadCounted(ReadOnlySpan<byte> payload, List<CollectedEvent> into)
    {
        var reader = new Reader(payload);
        var count = reader.Varint();
        if (count > int.MaxValue) { throw new FormatException($"an event count of {count}"); }
        ReadEvents(ref reader, (int)count, into);
        if (!reader.AtEnd) { throw new FormatException($"{reader.Remaining} bytes left after {count} events"); }
    }

    private static void ReadEvents(ref Reader reader, int count, List<CollectedEvent> into)
    {
        var recurring = new RecurringStrings(64);
        for (var i = 0; i < count; i++)
        {
            var typeByte = reader.Byte();
            if (typeByte > (byte)MessageType.Alias) { throw new FormatException($"event {i}: unknown message type {typeByte}"); }
            var flags = reader.Byte();
            var messageId = reader.String();
            var sourceId = recurring.Get(reader.Bytes());
            var name = (flags & HasEvent) != 0 ? recurring.Get(reader.Bytes()) : null;
            var userId = (flags & HasUserId) != 0 ? reader.String() : null;
            var anonymousId = (flags & HasAnonymousId) != 0 ? reader.String() : null;
            var groupId = (flags & HasGroupId) != 0 ? reader.String() : null;
            var previousId = (flags & HasPreviousId) != 0 ? reader.String() : null;
            var timestamp = reader.Time();
            DateTimeOffset? original = (flags & HasOriginal) != 0 ? reader.Time() : null;
            DateTimeOffset? sentAt = (flags & HasSentAt) != 0 ? reader.Time() : null;
            var receivedAt = reader.Time();
            // Written from well-formed UTF-8 (a RawJson, or a message's JSON the validator checked) under a checksum or in memory: copied, not checked again.
            var raw = new RawJson(reader.Bytes().ToArray());
            into.Add(new CollectedEvent(messageId, sourceId, (MessageType)typeByte, name, userId, anonymousId, groupId, previousId, timestamp, original, sentAt, receivedAt, raw));
        }
    }

    internal static void WriteHead(IBufferWriter<byte> output, MessageType type, byte flags)
    {
        var head = output.GetSpan(2);
        head[0] = (byte)type;
        head[1] = flags;
        output.Advance(2);
    }

    internal static void WriteString(IBufferWriter<byte> output, string value)
    {
        var length = Encoding.UTF8.GetByteCount(value);
        WriteVarint(output, (uint)length);
        var span = output.GetSpan(length);
        Encoding.UTF8.GetBytes(value, span);
        output.Advance(length);
    }

    internal static void WriteBytes(IBufferWriter<byte> output, ReadOnlySpan<byte> utf8)
    {
        WriteVarint(output, (uint)utf8.Length);
        utf8.CopyTo(output.GetSpan(utf8.Length));
        output.Advance(utf8.Length);
    }

    internal static void WriteTime(IBufferWriter<byte> output, DateTimeOffset time)
    {
        var span = output.GetSpan(10);
        BinaryPrimitives.WriteInt64LittleEndian(span, time.Ticks);
        BinaryPrimitives.WriteInt16LittleEndian(span[8..], (short)time.TotalOffsetMinutes);
        output.Advance(10);
    }

    /// <summary>An unsigned LEB128 varint: 7 bits a byte, the high bit set on every byte but the last.</summary>
    public static void WriteVarint(IBufferWriter<byte> output, uint value)
    {
        var span = output.GetSpan(5);
        var i = 0;
        while (value >= 0x80)
        {
            span[i++] = (byte)(value | 0x80);
            value >>= 7;
        }

        span[i++] = (byte)value;
        output.Advance(i);
    }

    private ref struct Reader(ReadOnlySpan<byte> data)
    {
        private readonly ReadOnlySpan<byte> _data = data;
        private int _at;

        public readonly bool AtEnd => _at == _data.Length;

        public readonly int Remaining => _data.Length - _at;

        public byte Byte() => _at < _data.Length ? _data[_at++] : throw new FormatException("the payload ends in the middle of an event");

        public uint Varint()
        {
            uint value = 0;
            for (var shift = 0; shift < 35; shift += 7)
            {
                var b = Byte();
                value |= (uint)(b & 0x7F) << shift;
                if (b < 0x80) { return value; }
            }

            throw new FormatException("a length is longer than five bytes");
        }

        public string String() => Encoding.UTF8.GetString(Bytes());

        public ReadOnlySpan<byte> Bytes()
        {
            var length = Varint();
            if (length > (uint)Remaining) { throw new FormatException($"a string of {length} bytes runs past the payload's end"); }
            var value = _data.Slice(_at, (int)length);
            _at += (int)length;
            return value;
        }

        public DateTimeOffset Time()
        {
            if (Remaining < 10) { throw new FormatException("the payload ends in the middle of a time"); }
            var ticks = BinaryPrimitives.ReadInt64LittleEndian(_data[_at..]);
            var minutes = BinaryPrimitives.ReadInt16LittleEndian(_data[(_at + 8)..]);
            _at += 10;
            return new DateTimeOffset(ticks, TimeSpan.FromMinutes(minutes));
        }
    }
}
