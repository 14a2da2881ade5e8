using System.Buffers;
using System.Runtime.InteropServices;
using System.Text.Json;

namespace Tessera.Core.Collection;

/// <summary>
/// Checks one message against Segment's spec and turns it into a <see cref="CollectedEvent"/>, applying Segment's
/// defaults and timestamp rules. Every refusal names the field at fault.
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
        rejection = Check(message, impliedType, sourceId, receivedAt, batchSentAt, externalIdsSuffice, ref collected);
        return rejection is null;
    }

    private static Rejection? Check(
        JsonElement message,
        MessageType? impliedType,
        string sourceId,
        DateTimeOffset receivedAt,
        DateTimeOffset? batchSentAt,
        bool externalIdsSuffice,
        ref CollectedEvent? collected)
    {
        if (message.ValueKind != JsonValueKind.Object)
        {
            return new Rejection("", $"a message must be a JSON object, not {Describe(message.ValueKind)}");
        }

        var raw = JsonMarshal.GetRawUtf8Value(message);
        if (raw.Length > CollectionLimits.MaxEventBytes)
        {
            return new Rejection("", $"the message is {raw.Length} bytes; the limit is {CollectionLimits.MaxEventBytes} bytes (32 KB) per message");
        }

        MessageType type;
        if (impliedType is { } implied)
        {
            type = implied;
        }
        else if (!message.TryGetProperty("type"u8, out var typeElement))
        {
            return new Rejection("type", "is required in a batch: one of identify, track, page, screen, group, alias");
        }
        else if (!MessageTypes.TryParse(typeElement, out type))
        {
            return new Rejection("type", $"must be one of identify, track, page, screen, group, alias, not {Show(typeElement)}");
        }

        if (ReadId(message, "userId", out var userId) is { } badUser) { return badUser; }
        if (ReadId(message, "anonymousId", out var anonymousId) is { } badAnonymous) { return badAnonymous; }
        if (ReadId(message, "messageId", out var messageId) is { } badMessageId) { return badMessageId; }
        if (messageId is { Length: > CollectionLimits.MaxMessageIdLength })
        {
            return new Rejection("messageId", $"is {messageId.Length} characters; the limit is {CollectionLimits.MaxMessageIdLength}");
        }

        string? eventName = null, groupId = null, previousId = null;
        switch (type)
        {
            case MessageType.Track:
                if (ReadString(message, "event", out eventName, recurring: true) is { } badEvent) { return badEvent; }
                if (string.IsNullOrWhiteSpace(eventName)) { return new Rejection("event", "is required for a track call and must be a non-empty string"); }
                break;
            case MessageType.Page:
            case MessageType.Screen:
                if (ReadString(message, "name", out eventName, recurring: true) is { } badName) { return badName; }
                break;
            case MessageType.Group:
                if (ReadId(message, "groupId", out groupId) is { } badGroup) { return badGroup; }
                if (groupId is null) { return new Rejection("groupId", "is required for a group call"); }
                break;
            case MessageType.Alias:
                if (ReadId(message, "previousId", out previousId) is { } badPrevious) { return badPrevious; }
                if (previousId is null) { return new Rejection("previousId", "is required for an alias call"); }
                if (userId is null) { return new Rejection("userId", "is required for an alias call"); }
                break;
            case MessageType.Identify:
            default:
                break;
        }

        if (userId is null && anonymousId is null && !(externalIdsSuffice && HasExternalIds(message)))
        {
            return new Rejection("userId", "either userId or anonymousId is required");
        }

        foreach (var name in ObjectFields)
        {
            if (message.TryGetProperty(name, out var value) && value.ValueKind is not (JsonValueKind.Object or JsonValueKind.Null))
            {
                return new Rejection(name, $"must be a JSON object, not {Describe(value.ValueKind)}");
            }
        }

        if (ReadTime(message, "timestamp", out var timestamp) is { } badTimestamp) { return badTimestamp; }
        if (ReadTime(message, "originalTimestamp", out var originalTimestamp) is { } badOriginal) { return badOriginal; }
        if (ReadTime(message, "sentAt", out var sentAt) is { } badSentAt) { return badSentAt; }

        sentAt ??= batchSentAt;
        // RudderStack's SDKs send the device time as originalTimestamp and a caller-set event time as timestamp;
        // when both are there, timestamp is that explicit time and is kept as given (as RudderStack's server does).
        var explicitTimestamp = timestamp is not null && originalTimestamp is not null ? timestamp : null;
        originalTimestamp ??= timestamp;
        collected = new CollectedEvent(
            MessageId: messageId ?? GenerateMessageId(),
            SourceId: sourceId,
            Type: type,
            Event: eventName,
            UserId: userId,
            AnonymousId: anonymousId,
            GroupId: groupId,
            PreviousId: previousId,
            Timestamp: explicitTimestamp ?? CorrectedTimestamp(originalTimestamp, sentAt, receivedAt),
            OriginalTimestamp: originalTimestamp,
            SentAt: sentAt,
            ReceivedAt: receivedAt,
            Raw: RawWithoutWriteKey(message, raw));
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

    private static bool HasExternalIds(JsonElement message) =>
        message.TryGetProperty("context"u8, out var context) && context.ValueKind == JsonValueKind.Object &&
        context.TryGetProperty("externalIds"u8, out var ids) && ids.ValueKind == JsonValueKind.Array && ids.GetArrayLength() > 0;

    private static readonly string[] ObjectFields = ["properties", "traits", "context", "integrations"];

    private static string GenerateMessageId() => "tessera-" + Guid.CreateVersion7().ToString("N");

    private static Rejection? ReadId(JsonElement message, string name, out string? value)
    {
        value = null;
        if (!message.TryGetProperty(name, out var element)) { return null; }
        switch (element.ValueKind)
        {
            case JsonValueKind.Null:
                return null;
            case JsonValueKind.String:
                var text = element.GetString();
                value = string.IsNullOrEmpty(text) ? null : text;
                return null;
            case JsonValueKind.Number:
                // SDKs allow numeric ids (userId: 42); Segment stores them as strings.
                value = element.GetRawText();
                return null;
            default:
                return new Rejection(name, $"must be a string, not {Describe(element.ValueKind)}");
        }
    }

    // Per thread: the event and page names seen last, decoded once (RecurringStrings).
    [ThreadStatic]
    private static RecurringStrings? _names;

    /// <summary>Reads an optional string; <paramref name="recurring"/> for values that repeat across messages (event names), which are then shared.</summary>
    private static Rejection? ReadString(JsonElement message, string name, out string? value, bool recurring = false)
    {
        value = null;
        if (!message.TryGetProperty(name, out var element) || element.ValueKind == JsonValueKind.Null) { return null; }
        if (element.ValueKind != JsonValueKind.String) { return new Rejection(name, $"must be a string, not {Describe(element.ValueKind)}"); }
        var raw = JsonMarshal.GetRawUtf8Value(element)[1..^1];
        value = recurring && raw.IndexOf((byte)'\\') < 0 ? (_names ??= new RecurringStrings(256)).Get(raw) : element.GetString();
        return null;
    }

    private static Rejection? ReadTime(JsonElement message, string name, out DateTimeOffset? value)
    {
        value = null;
        if (!message.TryGetProperty(name, out var element) || element.ValueKind == JsonValueKind.Null) { return null; }
        if (element.ValueKind == JsonValueKind.String && element.TryGetDateTimeOffset(out var parsed))
        {
            value = parsed.ToUniversalTime();
            return null;
        }

        return new Rejection(name, $"must be an ISO-8601 date-time string such as 2026-01-31T12:00:00.000Z, not {Show(element)}");
    }

    private static RawJson RawWithoutWriteKey(JsonElement message, ReadOnlySpan<byte> raw)
    {
        if (!message.TryGetProperty("writeKey"u8, out _))
        {
            return RawJson.CopyOf(raw);
        }

        // The browser SDK puts the write key in every message; it is a credential, so it is not kept with the data.
        var buffer = new ArrayBufferWriter<byte>(raw.Length);
        using (var writer = new Utf8JsonWriter(buffer))
        {
            writer.WriteStartObject();
            foreach (var property in message.EnumerateObject())
            {
                if (!property.NameEquals("writeKey"u8)) { property.WriteTo(writer); }
            }

            writer.WriteEndObject();
        }

        return RawJson.CopyOf(buffer.WrittenSpan);
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
