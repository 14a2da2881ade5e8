using System.Text;
using System.Text.Json.Nodes;
using Tessera.Core.Collection;
using Tessera.Core.Profiles;
using Tessera.Server.Management;
using Tessera.Storage.Events;

namespace Tessera.Server.Activation;

/// <summary>
/// What a Segment destination sends, in Segment's format. A delivery's payload is the body of <c>/v1/batch</c> it
/// would be sent as alone, <c>{"batch": [messages]}</c>; batches of deliveries concatenate their messages.
/// <list type="bullet">
/// <item>An event: the stored message as the client sent it (no write key), with its <c>messageId</c> (so the receiver
/// deduplicates a resend), its <c>type</c>, and <c>timestamp</c> set to the time Tessera gave it; <c>sentAt</c> is
/// left out, because a receiver would take the forwarding delay for clock skew and shift the time.</item>
/// <item>An audience change, as Segment Engage sends audiences to destinations: an <c>identify</c> with the audience
/// key as a boolean trait, and a <c>track</c> <c>Audience Entered</c> / <c>Audience Exited</c> with the key in
/// <c>properties.audience_key</c> and as a boolean property; both carry <c>context.personas</c> and the profile's
/// identifiers in <c>context.externalIds</c>.</item>
/// </list>
/// </summary>
public static class SegmentMessages
{
    public const string Entered = "Audience Entered";
    public const string Exited = "Audience Exited";

    /// <summary>The payload that forwards <paramref name="stored"/>.</summary>
    public static JsonObject Event(StoredEvent stored)
    {
        var m = stored.Message;
        var message = m.Raw.ParseNode() as JsonObject ?? [];
        message["type"] = m.Type.Name();
        message["messageId"] = m.MessageId;
        message["timestamp"] = MessageJson.Iso(m.Timestamp);
        message.Remove("sentAt");
        return Batch(message);
    }

    /// <summary>The payload that tells the receiver <paramref name="profileId"/> entered or exited an audience.</summary>
    /// <param name="key">The delivery's idempotency key: the messages' ids derive from it, so a resend is recognised.</param>
    public static JsonObject AudienceChange(bool entered, string segmentId, string? segmentName, DateTimeOffset at, string key, string profileId, ProfileView? profile)
    {
        var audienceKey = AudienceKey(segmentName, segmentId);
        var timestamp = MessageJson.Iso(at);
        var identify = Identified(new JsonObject { ["type"] = "identify", ["messageId"] = $"{key}-identify" }, profileId, profile);
        identify["timestamp"] = timestamp;
        identify["traits"] = new JsonObject { [audienceKey] = entered };
        identify["context"] = Context(segmentId, audienceKey, profile);
        var track = Identified(new JsonObject { ["type"] = "track", ["messageId"] = $"{key}-track", ["event"] = entered ? Entered : Exited }, profileId, profile);
        track["timestamp"] = timestamp;
        track["properties"] = new JsonObject { ["audience_key"] = audienceKey, [audienceKey] = entered };
        track["context"] = Context(segmentId, audienceKey, profile);
        return Batch(identify, track);
    }

    /// <summary>
    /// The audience's key, as Engage derives one from a name: lower case, every run of other characters than
    /// <c>a-z 0-9</c> as one <c>_</c> ("High-Value Users" is <c>high_value_users</c>); the audience id when nothing is left.
    /// </summary>
    public static string AudienceKey(string? name, string segmentId)
    {
        var key = new StringBuilder();
        foreach (var c in (name ?? "").ToLowerInvariant())
        {
            if (c is (>= 'a' and <= 'z') or (>= '0' and <= '9')) { key.Append(c); }
            else if (key.Length > 0 && key[^1] != '_') { key.Append('_'); }
        }

        var text = key.ToString().TrimEnd('_');
        return text.Length == 0 ? segmentId : text;
    }

    /// <summary>The messages of a payload, as text to splice into a larger batch (the payload is always <c>{"batch":[...]}</c>).</summary>
    public static string Messages(string payload)
    {
        const string Prefix = "{\"batch\":[";
        if (payload.StartsWith(Prefix, StringComparison.Ordinal) && payload.EndsWith("]}", StringComparison.Ordinal)) { return payload[Prefix.Length..^2]; }
        return string.Join(",", (JsonNode.Parse(payload)?["batch"]?.AsArray() ?? []).Select(m => m?.ToJsonString()));
    }

    private static JsonObject Batch(params JsonObject[] messages) => new() { ["batch"] = new JsonArray([.. messages]) };

    /// <summary>The profile's <c>user_id</c> as userId and <c>anonymous_id</c> as anonymousId; a profile with neither is named by its Tessera id as anonymousId.</summary>
    private static JsonObject Identified(JsonObject message, string profileId, ProfileView? profile)
    {
        var userId = (profile?.Identifiers ?? []).Where(i => i.Type == "user_id").Select(i => (string?)i.Value).FirstOrDefault();
        var anonymousId = (profile?.Identifiers ?? []).Where(i => i.Type == "anonymous_id").Select(i => (string?)i.Value).FirstOrDefault();
        if (userId is not null) { message["userId"] = userId; }
        if (anonymousId is not null || userId is null) { message["anonymousId"] = anonymousId ?? profileId; }
        return message;
    }

    private static JsonObject Context(string segmentId, string audienceKey, ProfileView? profile)
    {
        var externalIds = new JsonArray();
        foreach (var group in (profile?.Identifiers ?? []).GroupBy(i => i.Type))
        {
            externalIds.Add(new JsonObject { ["id"] = group.First().Value, ["type"] = group.Key, ["collection"] = "users", ["encoding"] = "none" });
        }

        return new JsonObject
        {
            ["personas"] = new JsonObject { ["computation_class"] = "audience", ["computation_id"] = segmentId, ["computation_key"] = audienceKey, ["namespace"] = "tessera" },
            ["externalIds"] = externalIds,
        };
    }
}
