using System.Buffers;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Text;
using System.Text.Json;

namespace Tessera.Core.Collection;

/// <summary>
/// Checks one message against Segment's spec and turns it into a <see cref="CollectedEvent"/> (or its encoded form,
/// <see cref="EncodedEvents"/>), applying Segment's defaults and timestamp rules. Every refusal names the field at fault.
/// </summary>
public static class MessageValidator
{
    /// <summary>Validates <paramref name="message"/>.</summary>
    /// <param name="impliedType">The type a single-call endpoint implies (<c>/v1/track</c>); null for batch items, which must say.</param>
    /// <param name="batchSentAt">A <c>sentAt</c> given once for a whole batch, used when the message has none of its own.</param>
    /// <param name="externalIdsSuffice">
    /// For Tessera's own profile imports: a message may carry its identifiers only in <c>context.externalIds</c>
    /// (a CRM row with an email and no user id). The HTTP API keeps Segment's rule (userId or anonymousId).
    /// </param>
    public static bool TryValidate(
        JsonElement message,
        MessageType? impliedType,
        string sourceId,
        DateTimeOffset receivedAt,
        DateTimeOffset? batchSentAt,
        out CollectedEvent? collected,
        out Rejection? rejection,
        bool externalIdsSuffice = false)
    {
        collected = null;
        rejection = Check(message, impliedType, receivedAt, batchSentAt, externalIdsSuffice, out var fields);
        if (rejection is not null) { return false; }
        collected = new CollectedEvent(
            MessageId: fields.MessageId.IsPresent ? fields.MessageId.ToString() : GenerateMessageId(),
            SourceId: sourceId,
            Type: fields.Type,
            Event: fields.Event.IsPresent ? (_names ??= new RecurringStrings(256)).Get(fields.Event.Utf8) : null,
            UserId: fields.UserId.ToStringOrNull(),
            AnonymousId: fields.AnonymousId.ToStringOrNull(),
            GroupId: fields.GroupId.ToStringOrNull(),
            PreviousId: fields.PreviousId.ToStringOrNull(),
            Timestamp: fields.Timestamp,
            OriginalTimestamp: fields.OriginalTimestamp,
            SentAt: fields.SentAt,
            ReceivedAt: receivedAt,
            Raw: fields.HasWriteKey ? RawJson.CopyOf(WithoutWriteKey(message)) : RawJson.CopyOf(fields.Raw));
        return true;
    }

    /// <summary>
    /// Validates <paramref name="message"/> as <see cref="TryValidate(JsonElement, MessageType?, string, DateTimeOffset, DateTimeOffset?, out CollectedEvent?, out Rejection?, bool)"/>
    /// does, and appends it to <paramref name="into"/> in <see cref="EventCodec"/>'s form, the same event byte for byte
    /// as that overload's <see cref="CollectedEvent"/> encoded, without making it.
    /// </summary>
    public static bool TryValidate(
        JsonElement message,
        MessageType? impliedType,
        string sourceId,
        DateTimeOffset receivedAt,
        DateTimeOffset? batchSentAt,
        EncodedEvents into,
        out Rejection? rejection)
    {
        rejection = Check(message, impliedType, receivedAt, batchSentAt, externalIdsSuffice: false, out var fields);
        if (rejection is not null) { return false; }
        var raw = fields.HasWriteKey ? WithoutWriteKey(message) : fields.Raw;
        EventCodec.Write(
            into, fields.Type, fields.MessageId.IsPresent ? fields.MessageId : Utf8Text.Of(GenerateMessageId()), into.SourceIdUtf8(sourceId),
            fields.Event, fields.UserId, fields.AnonymousId, fields.GroupId, fields.PreviousId, fields.Timestamp, fields.OriginalTimestamp,
            fields.SentAt, receivedAt, System.Text.Unicode.Utf8.IsValid(raw) ? raw : Encoding.UTF8.GetBytes(Encoding.UTF8.GetString(raw)));
        into.Added();
        return true;
    }

    /// <summary>What the checks read from a valid message, with Segment's defaults and timestamp rule applied.</summary>
    private ref struct Fields
    {
        public MessageType Type;
        public Utf8Text MessageId, Event, UserId, AnonymousId, GroupId, PreviousId;
        public DateTimeOffset Timestamp;
        public DateTimeOffset? OriginalTimestamp, SentAt;
        public ReadOnlySpan<byte> Raw;
        public bool HasWriteKey;
    }

    private static Rejection? Check(
        JsonElement message,
        MessageType? impliedType,
        DateTimeOffset receivedAt,
        DateTimeOffset? batchSentAt,
        bool externalIdsSuffice,
        out Fields fields)
    {
        fields = default;
        if (message.ValueKind != JsonValueKind.Object)
        {
            return new Rejection("", $"a message must be a JSON object, not {Describe(message.ValueKind)}");
        }

        fields.Raw = JsonMarshal.GetRawUtf8Value(message);
        if (fields.Raw.Length > CollectionLimits.MaxEventBytes)
        {
            return new Rejection("", $"the message is {fields.Raw.Length} bytes; the limit is {CollectionLimits.MaxEventBytes} bytes (32 KB) per message");
        }

        var members = new Members();
        members.Read(message);

        if (impliedType is { } implied)
        {
            fields.Type = implied;
        }
        else if (members[Member.Type] is var typeElement && typeElement.ValueKind == JsonValueKind.Undefined)
        {
            return new Rejection("type", "is required in a batch: one of identify, track, page, screen, group, alias");
        }
        else if (!MessageTypes.TryParse(typeElement, out fields.Type))
        {
            return new Rejection("type", $"must be one of identify, track, page, screen, group, alias, not {Show(typeElement)}");
        }

        if (ReadId(members, Member.UserId, out fields.UserId) is { } badUser) { return badUser; }
        if (ReadId(members, Member.AnonymousId, out fields.AnonymousId) is { } badAnonymous) { return badAnonymous; }
        if (ReadId(members, Member.MessageId, out fields.MessageId) is { } badMessageId) { return badMessageId; }
        if (fields.MessageId.Utf8.Length > CollectionLimits.MaxMessageIdLength && Encoding.UTF8.GetCharCount(fields.MessageId.Utf8) is var characters and > CollectionLimits.MaxMessageIdLength)
        {
            return new Rejection("messageId", $"is {characters} characters; the limit is {CollectionLimits.MaxMessageIdLength}");
        }

        switch (fields.Type)
        {
            case MessageType.Track:
                if (ReadString(members, Member.Event, out fields.Event) is { } badEvent) { return badEvent; }
                if (IsBlank(fields.Event)) { return new Rejection("event", "is required for a track call and must be a non-empty string"); }
                break;
            case MessageType.Page:
            case MessageType.Screen:
                if (ReadString(members, Member.Name, out fields.Event) is { } badName) { return badName; }
                break;
            case MessageType.Group:
                if (ReadId(members, Member.GroupId, out fields.GroupId) is { } badGroup) { return badGroup; }
                if (!fields.GroupId.IsPresent) { return new Rejection("groupId", "is required for a group call"); }
                break;
            case MessageType.Alias:
                if (ReadId(members, Member.PreviousId, out fields.PreviousId) is { } badPrevious) { return badPrevious; }
                if (!fields.PreviousId.IsPresent) { return new Rejection("previousId", "is required for an alias call"); }
                if (!fields.UserId.IsPresent) { return new Rejection("userId", "is required for an alias call"); }
                break;
            case MessageType.Identify:
            default:
                break;
        }

        if (!fields.UserId.IsPresent && !fields.AnonymousId.IsPresent && !(externalIdsSuffice && HasExternalIds(members[Member.Context])))
        {
            return new Rejection("userId", "either userId or anonymousId is required");
        }

        foreach (var member in ObjectMembers)
        {
            if (members[member].ValueKind is not (JsonValueKind.Undefined or JsonValueKind.Object or JsonValueKind.Null))
            {
                return new Rejection(Names[(int)member], $"must be a JSON object, not {Describe(members[member].ValueKind)}");
            }
        }

        if (ReadTime(members, Member.Timestamp, out var timestamp) is { } badTimestamp) { return badTimestamp; }
        if (ReadTime(members, Member.OriginalTimestamp, out var originalTimestamp) is { } badOriginal) { return badOriginal; }
        if (ReadTime(members, Member.SentAt, out var sentAt) is { } badSentAt) { return badSentAt; }

        sentAt ??= batchSentAt;
        // RudderStack's SDKs send the device time as originalTimestamp and a caller-set event time as timestamp;
        // when both are there, timestamp is that explicit time and is kept as given (as RudderStack's server does).
        var explicitTimestamp = timestamp is not null && originalTimestamp is not null ? timestamp : null;
        originalTimestamp ??= timestamp;
        fields.Timestamp = explicitTimestamp ?? CorrectedTimestamp(originalTimestamp, sentAt, receivedAt);
        fields.OriginalTimestamp = originalTimestamp;
        fields.SentAt = sentAt;
        fields.HasWriteKey = members[Member.WriteKey].ValueKind != JsonValueKind.Undefined;
        return null;
    }

    /// <summary>
    /// Segment's rule: <c>timestamp = receivedAt - (sentAt - originalTimestamp)</c>, which removes the device's clock
    /// skew while keeping the delay between the call and its sending (so historical imports keep their dates).
    /// Without a <c>sentAt</c> the client's time is taken as it is; without any client time, the receive time.
    /// </summary>
    public static DateTimeOffset CorrectedTimestamp(DateTimeOffset? originalTimestamp, DateTimeOffset? sentAt, DateTimeOffset receivedAt) =>
        (originalTimestamp, sentAt) switch
        {
            ({ } original, { } sent) => receivedAt - (sent - original),
            ({ } original, null) => original,
            _ => receivedAt,
        };

    private static bool HasExternalIds(JsonElement context) =>
        context.ValueKind == JsonValueKind.Object &&
        context.TryGetProperty("externalIds"u8, out var ids) && ids.ValueKind == JsonValueKind.Array && ids.GetArrayLength() > 0;

    /// <summary>The members the checks read; each one's name in a message is its own in camel case (<see cref="Names"/>).</summary>
    private enum Member
    {
        Type, UserId, AnonymousId, MessageId, Event, Name, GroupId, PreviousId,
        Properties, Traits, Context, Integrations, Timestamp, OriginalTimestamp, SentAt, WriteKey,

        /// <summary>How many there are: the slots of <see cref="Members"/>.</summary>
        Count,
    }

    private static readonly string[] Names =
        [.. Enum.GetValues<Member>().Where(m => m != Member.Count).Select(m => JsonNamingPolicy.CamelCase.ConvertName(m.ToString()))];

    private static readonly byte[][] Utf8Names = [.. Names.Select(Encoding.UTF8.GetBytes)];

    private static readonly Member[] ObjectMembers = [Member.Properties, Member.Traits, Member.Context, Member.Integrations];

    /// <summary>
    /// The members the checks read, found in one pass over the message: looked up one by one, each of the ~15 lookups
    /// scanned the message's members again (a third of the validation's time: 1.60 µs a message against 1.04 in one pass,
    /// <c>CollectionBenchmarks</c>, docs/benchmarks.md). A name given twice counts as its last,
    /// as with <see cref="JsonElement.TryGetProperty(string, out JsonElement)"/>; a member absent is
    /// <see cref="JsonValueKind.Undefined"/>.
    /// </summary>
    [InlineArray((int)Member.Count)]
    private struct Members
    {
        private JsonElement _first;

        public readonly JsonElement this[Member member] => this[(int)member];

        public void Read(JsonElement message)
        {
            foreach (var property in message.EnumerateObject())
            {
                var name = JsonMarshal.GetRawUtf8PropertyName(property);
                var escaped = name.IndexOf((byte)'\\') >= 0;
                for (var i = 0; i < Utf8Names.Length; i++)
                {
                    if (escaped ? property.NameEquals(Utf8Names[i]) : name.SequenceEqual(Utf8Names[i]))
                    {
                        this[i] = property.Value;
                        break;
                    }
                }
            }
        }
    }

    private static string GenerateMessageId() => "tessera-" + Guid.CreateVersion7().ToString("N");

    private static Rejection? ReadId(scoped in Members members, Member member, out Utf8Text value)
    {
        var (element, name) = (members[member], Names[(int)member]);
        value = default;
        switch (element.ValueKind)
        {
            case JsonValueKind.Undefined or JsonValueKind.Null:
                return null;
            case JsonValueKind.String:
                var text = Unescaped(element);
                value = text.IsEmpty ? default : new Utf8Text(text);
                return null;
            case JsonValueKind.Number:
                // SDKs allow numeric ids (userId: 42); Segment stores them as strings (the number as written).
                value = new Utf8Text(JsonMarshal.GetRawUtf8Value(element));
                return null;
            default:
                return new Rejection(name, $"must be a string, not {Describe(element.ValueKind)}");
        }
    }

    /// <summary>A string's UTF-8 as the document holds it when it has no escapes (the usual case: nothing copied), else decoded.</summary>
    private static ReadOnlySpan<byte> Unescaped(JsonElement element)
    {
        var raw = JsonMarshal.GetRawUtf8Value(element)[1..^1];
        return raw.IndexOf((byte)'\\') < 0 ? raw : Encoding.UTF8.GetBytes(element.GetString()!);
    }

    private static bool IsBlank(Utf8Text text)
    {
        if (!text.IsPresent) { return true; }
        // Any ASCII byte that is not white space settles it; only text of white space and non-ASCII is decoded to be sure.
        foreach (var b in text.Utf8)
        {
            if (b < 0x80 && !char.IsWhiteSpace((char)b)) { return false; }
        }

        return string.IsNullOrWhiteSpace(text.ToString());
    }

    // Per thread: the event and page names seen last, decoded once (RecurringStrings).
    [ThreadStatic]
    private static RecurringStrings? _names;

    /// <summary>Reads an optional string (event and page names); an empty one is present, unlike an empty id.</summary>
    private static Rejection? ReadString(scoped in Members members, Member member, out Utf8Text value)
    {
        var (element, name) = (members[member], Names[(int)member]);
        value = default;
        if (element.ValueKind is JsonValueKind.Undefined or JsonValueKind.Null) { return null; }
        if (element.ValueKind != JsonValueKind.String) { return new Rejection(name, $"must be a string, not {Describe(element.ValueKind)}"); }
        value = new Utf8Text(Unescaped(element));
        return null;
    }

    private static Rejection? ReadTime(scoped in Members members, Member member, out DateTimeOffset? value)
    {
        var (element, name) = (members[member], Names[(int)member]);
        value = null;
        if (element.ValueKind is JsonValueKind.Undefined or JsonValueKind.Null) { return null; }
        if (element.ValueKind == JsonValueKind.String && element.TryGetDateTimeOffset(out var parsed))
        {
            value = parsed.ToUniversalTime();
            return null;
        }

        return new Rejection(name, $"must be an ISO-8601 date-time string such as 2026-01-31T12:00:00.000Z, not {Show(element)}");
    }

    /// <summary>The browser SDK puts the write key in every message; it is a credential, so it is not kept with the data.</summary>
    private static ReadOnlySpan<byte> WithoutWriteKey(JsonElement message)
    {
        var buffer = new ArrayBufferWriter<byte>(JsonMarshal.GetRawUtf8Value(message).Length);
        using (var writer = new Utf8JsonWriter(buffer))
        {
            writer.WriteStartObject();
            foreach (var property in message.EnumerateObject())
            {
                if (!property.NameEquals("writeKey"u8)) { property.WriteTo(writer); }
            }

            writer.WriteEndObject();
        }

        return buffer.WrittenSpan;
    }

    private static string Show(JsonElement element)
    {
        var text = element.GetRawText();
        return text.Length <= 40 ? text : text[..40] + "…";
    }

    private static string Describe(JsonValueKind kind) => kind switch
    {
        JsonValueKind.Object => "an object",
        JsonValueKind.Array => "an array",
        JsonValueKind.String => "a string",
        JsonValueKind.Number => "a number",
        JsonValueKind.True or JsonValueKind.False => "a boolean",
        JsonValueKind.Null => "null",
        _ => "nothing",
    };
}
