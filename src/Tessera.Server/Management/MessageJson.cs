using System.Globalization;
using System.Text.Json.Nodes;
using Tessera.Core.Collection;
using Tessera.Storage.Events;

namespace Tessera.Server.Management;

/// <summary>A stored event as the API shows it: the message as sent, with Tessera's resolved fields set on top.</summary>
public static class MessageJson
{
    public static JsonObject From(StoredEvent stored)
    {
        var m = stored.Message;
        var json = m.Raw.ParseNode() as JsonObject ?? [];
        json["type"] = m.Type.Name();
        json["messageId"] = m.MessageId;
        if (m.UserId is not null) { json["userId"] = m.UserId; }
        if (m.AnonymousId is not null) { json["anonymousId"] = m.AnonymousId; }
        json["timestamp"] = Iso(m.Timestamp);
        json["originalTimestamp"] = m.OriginalTimestamp is { } original ? Iso(original) : null;
        json["sentAt"] = m.SentAt is { } sent ? Iso(sent) : null;
        json["receivedAt"] = Iso(m.ReceivedAt);
        json["sourceId"] = m.SourceId;
        json["profileId"] = stored.ProfileId;
        return json;
    }

    /// <summary>ISO 8601 in UTC with milliseconds, as Segment writes times.</summary>
    public static string Iso(DateTimeOffset time) => time.UtcDateTime.ToString("yyyy-MM-dd'T'HH:mm:ss.fff'Z'", CultureInfo.InvariantCulture);
}
