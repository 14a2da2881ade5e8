using System.Buffers;
using System.Buffers.Binary;
using System.Text;
using Tessera.Core.Collection;

namespace Tessera.Storage.Journal;

/// <summary>
/// A record's payload: the group's events in a compact binary form. Per event: the type (one byte), a byte of
/// flags saying which optional fields follow, then the strings as UTF-8 with a varint length (messageId, sourceId,
/// the optional event, userId, anonymousId, groupId, previousId, raw) and the times as clock ticks plus offset
/// minutes (timestamp, the optional originalTimestamp and sentAt, receivedAt). About the raw JSON's size plus 60 bytes.
/// </summary>
internal static class JournalCodec
{
    private const byte HasEvent = 1, HasUserId = 2, HasAnonymousId = 4, HasGroupId = 8, HasPreviousId = 16, HasOriginal = 32, HasSentAt = 64;

    public static void Write(IReadOnlyList<CollectedEvent> events, IBufferWriter<byte> output)
    {
        WriteVarint(output, (uint)events.Count);
        foreach (var e in events)
        {
            var flags = (byte)((e.Event is null ? 0 : HasEvent) | (e.UserId is null ? 0 : HasUserId) | (e.AnonymousId is null ? 0 : HasAnonymousId)
                | (e.GroupId is null ? 0 : HasGroupId) | (e.PreviousId is null ? 0 : HasPreviousId)
                | (e.OriginalTimestamp is null ? 0 : HasOriginal) | (e.SentAt is null ? 0 : HasSentAt));
            var head = output.GetSpan(2);
            head[0] = (byte)e.Type;
            head[1] = flags;
            output.Advance(2);
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
            WriteRaw(output, e.Raw);
        }
    }

    /// <summary>Decodes a payload whose checksum matched; throws <see cref="FormatException"/> when it does not parse (a bug, not a disk error).</summary>
    public static void Read(ReadOnlySpan<byte> payload, List<CollectedEvent> into)
    {
        var reader = new Reader(payload);
        var recurring = new RecurringStrings(64);
        var count = reader.Varint();
        for (var i = 0u; i < count; i++)
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
            // Written from a RawJson (well-formed UTF-8) and checked against the record's checksum: copied, not checked again.
            var raw = new RawJson(reader.Bytes().ToArray());
            into.Add(new CollectedEvent(messageId, sourceId, (MessageType)typeByte, name, userId, anonymousId, groupId, previousId, timestamp, original, sentAt, receivedAt, raw));
        }

        if (!reader.AtEnd) { throw new FormatException($"{reader.Remaining} bytes left after {count} events"); }
    }

    private static void WriteString(IBufferWriter<byte> output, string value)
    {
        var length = Encoding.UTF8.GetByteCount(value);
        WriteVarint(output, (uint)length);
        var span = output.GetSpan(length);
        Encoding.UTF8.GetBytes(value, span);
        output.Advance(length);
    }

    private static void WriteRaw(IBufferWriter<byte> output, RawJson raw)
    {
        var length = raw.Utf8Length;
        WriteVarint(output, (uint)length);
        var span = output.GetSpan(length);
        if (raw.IsUtf8) { raw.Utf8.Span.CopyTo(span); }
        else { Encoding.UTF8.GetBytes(raw.ToString(), span); }
        output.Advance(length);
    }

    private static void WriteTime(IBufferWriter<byte> output, DateTimeOffset time)
    {
        var span = output.GetSpan(10);
        BinaryPrimitives.WriteInt64LittleEndian(span, time.Ticks);
        BinaryPrimitives.WriteInt16LittleEndian(span[8..], (short)time.TotalOffsetMinutes);
        output.Advance(10);
    }

    private static void WriteVarint(IBufferWriter<byte> output, uint value)
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
