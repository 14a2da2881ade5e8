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
    private const byte HasEvent = 1, HasUserId = 2, HasAnonymousId = 4, HasGroupId = 8, HasPreviousId = 16, HasOriginal = 32, HasSentAt = 64;

    /// <summary>Writes <paramref name="e"/> in the codec's form.</summary>
    public static void Write(CollectedEvent e, IBufferWriter<byte> output) => Write(
        output, e.Type, Utf8Text.Of(e.MessageId), Encoding.UTF8.GetBytes(e.SourceId), Utf8Text.Of(e.Event), Utf8Text.Of(e.UserId),
        Utf8Text.Of(e.AnonymousId), Utf8Text.Of(e.GroupId), Utf8Text.Of(e.PreviousId), e.Timestamp, e.OriginalTimestamp, e.SentAt,
        e.ReceivedAt, e.Raw.IsUtf8 ? e.Raw.Utf8.Span : Encoding.UTF8.GetBytes(e.Raw.ToString()));

    /// <summary>
    /// Writes one event from its fields as UTF-8: the one writer of the form, for a <see cref="CollectedEvent"/> and
    /// for the validator, which writes a message's fields as its JSON holds them (<see cref="MessageValidator"/>).
    /// </summary>
    internal static void Write(
        IBufferWriter<byte> output, MessageType type, Utf8Text messageId, ReadOnlySpan<byte> sourceId, Utf8Text name, Utf8Text userId,
        Utf8Text anonymousId, Utf8Text groupId, Utf8Text previousId, DateTimeOffset timestamp, DateTimeOffset? original, DateTimeOffset? sentAt,
        DateTimeOffset receivedAt, ReadOnlySpan<byte> raw)
    {
        var head = output.GetSpan(2);
        head[0] = (byte)type;
        head[1] = (byte)((name.IsPresent ? HasEvent : 0) | (userId.IsPresent ? HasUserId : 0) | (anonymousId.IsPresent ? HasAnonymousId : 0)
            | (groupId.IsPresent ? HasGroupId : 0) | (previousId.IsPresent ? HasPreviousId : 0)
            | (original is null ? 0 : HasOriginal) | (sentAt is null ? 0 : HasSentAt));
        output.Advance(2);
        WriteBytes(output, messageId.Utf8);
        WriteBytes(output, sourceId);
        if (name.IsPresent) { WriteBytes(output, name.Utf8); }
        if (userId.IsPresent) { WriteBytes(output, userId.Utf8); }
        if (anonymousId.IsPresent) { WriteBytes(output, anonymousId.Utf8); }
        if (groupId.IsPresent) { WriteBytes(output, groupId.Utf8); }
        if (previousId.IsPresent) { WriteBytes(output, previousId.Utf8); }

        WriteTime(output, timestamp);
        if (original is { } o) { WriteTime(output, o); }
        if (sentAt is { } s) { WriteTime(output, s); }
        WriteTime(output, receivedAt);
        WriteBytes(output, raw);
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

    private static void WriteBytes(IBufferWriter<byte> output, ReadOnlySpan<byte> utf8)
    {
        WriteVarint(output, (uint)utf8.Length);
        utf8.CopyTo(output.GetSpan(utf8.Length));
        output.Advance(utf8.Length);
    }

    private static void WriteTime(IBufferWriter<byte> output, DateTimeOffset time)
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

/// <summary>An optional string field as UTF-8, or absent (<see cref="IsPresent"/> false, the default).</summary>
internal readonly ref struct Utf8Text(ReadOnlySpan<byte> utf8)
{
    public ReadOnlySpan<byte> Utf8 { get; } = utf8;

    public bool IsPresent { get; } = true;

    public static Utf8Text Of(string? value) => value is null ? default : new Utf8Text(Encoding.UTF8.GetBytes(value));

    public override string ToString() => Encoding.UTF8.GetString(Utf8);

    public string? ToStringOrNull() => IsPresent ? ToString() : null;
}
