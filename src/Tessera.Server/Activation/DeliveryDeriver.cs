using System.Text.Json;
using System.Text.Json.Nodes;
using Tessera.Core.Activation;
using Tessera.Core.Profiles;
using Tessera.Server.Management;
using Tessera.Storage.Activation;
using Tessera.Storage.Audiences;
using Tessera.Storage.Events;

namespace Tessera.Server.Activation;

/// <summary>
/// Turns what the logs say happened into deliveries: which destinations want each audience change and event,
/// whether the profile consented to the destination's purpose, and the payload, built once so every retry sends
/// the same bytes. Runs inside the store's derivation transaction.
/// </summary>
public sealed class DeliveryDeriver(Func<ProfileEngine> engine, TimeProvider clock) : IDeliveryDeriver
{
    /// <summary>
    /// Payloads already sent before their cause was committed (<see cref="ActivationService"/>'s immediate sends), by
    /// idempotency key: the derived delivery takes the same bytes, so every later send (a retry) matches the first.
    /// </summary>
    public System.Collections.Concurrent.ConcurrentDictionary<string, ImmediateSend> Immediate { get; } = new(StringComparer.Ordinal);

    /// <summary>
    /// The delivery <see cref="Derive"/> will make for an audience change that is not committed yet, when the destination
    /// can be sent to at once: no purpose (consent is derived with the log), no frequency cap (counted from the log).
    /// </summary>
    public NewDelivery? Early(Destination destination, StoredAudienceChange stored)
    {
        if (destination.Purpose is not null || destination.FrequencyCap is not null) { return null; }
        var current = engine();
        return Build(destination, ChangeCause(stored, current), current, [], clock.GetUtcNow());
    }

    /// <summary>The cause of an audience change's delivery: the same for an early send and for its derivation, so both build the same payload.</summary>
    private static Cause ChangeCause(StoredAudienceChange stored, ProfileEngine current) =>
        new(stored.Change.Entered ? DeliveryKind.AudienceEntered : DeliveryKind.AudienceExited, stored.Id, stored.Change.ProfileId, stored.Change.At)
        {
            SegmentId = stored.Change.AudienceId,
            SegmentName = current.GetAudience(stored.Change.AudienceId)?.Name,
            Reason = stored.Change.Reason,
        };

    public EventInterest Interest(IReadOnlyList<StoredDestination> destinations)
    {
        var live = destinations.Select(d => d.Destination).Where(d => d.Enabled && d.SubscribesToEvents).ToList();
        return new EventInterest(live.SelectMany(d => d.Events).ToHashSet(StringComparer.Ordinal), live.Any(d => d.Events.Count == 0 && d.Where.Count > 0));
    }

    public IReadOnlyCollection<string> ConsentProfiles(IReadOnlyList<StoredDestination> destinations, IReadOnlyList<StoredAudienceChange> changes, IReadOnlyList<StoredEvent> events)
    {
        var guarded = destinations.Select(d => d.Destination).Where(d => d.Enabled && d.FollowsChanges && d.Purpose is not null).ToList();
        if (guarded.Count == 0) { return []; }
        var segments = guarded.SelectMany(d => d.Segments).ToHashSet(StringComparer.Ordinal);
        var causes = changes.Where(c => segments.Contains(c.Change.AudienceId)).Select(c => c.Change.ProfileId);
        if (guarded.Any(d => d.SubscribesToEvents)) { causes = causes.Concat(events.Select(e => e.ProfileId!)); }
        var profiles = new HashSet<string>(StringComparer.Ordinal);
        var current = engine();
        foreach (var id in causes.Distinct(StringComparer.Ordinal)) { profiles.UnionWith(Cluster(current, id)); }
        return profiles;
    }

    public IReadOnlyList<NewDelivery> Derive(DerivationInput input)
    {
        var current = engine();
        var live = input.Destinations.Where(d => d.Destination is { Enabled: true, FollowsChanges: true }).ToList();
        if (live.Count == 0) { return []; }
        var consent = new Dictionary<string, List<ConsentState>>(StringComparer.Ordinal);
        foreach (var c in input.Consent)
        {
            if (!consent.TryGetValue(c.ProfileId, out var list)) { consent[c.ProfileId] = list = []; }
            list.Add(c);
        }

        var now = clock.GetUtcNow();
        var deliveries = new List<NewDelivery>();
        NewDelivery Capped(Destination destination, NewDelivery delivery)
        {
            if (destination.FrequencyCap is not { } cap || delivery.Status != DeliveryStatus.Pending) { return delivery; }
            if (!input.Recent.TryGetValue(destination.Id, out var counts)) { return delivery; }
            var count = counts.GetValueOrDefault(delivery.ProfileId);
            if (count >= cap.Max) { return delivery with { Status = DeliveryStatus.Skipped, Reason = $"frequency cap: at most {cap.Max} per {cap.Per}" }; }
            counts[delivery.ProfileId] = count + 1;
            return delivery;
        }

        foreach (var stored in input.Changes)
        {
            var change = stored.Change;
            foreach (var d in live)
            {
                if (stored.Id <= d.AfterChangeId || !d.Destination.Segments.Contains(change.AudienceId, StringComparer.Ordinal)) { continue; }
                var delivery = Build(d.Destination, ChangeCause(stored, current), current, consent, now);
                if (Immediate.TryGetValue(delivery.IdempotencyKey, out var sent)) { delivery = delivery with { Payload = sent.Payload }; }
                deliveries.Add(Capped(d.Destination, delivery));
            }
        }

        foreach (var e in input.Events)
        {
            JsonDocument? document = null;
            try
            {
                foreach (var d in live)
                {
                    if (e.Seq <= d.AfterSeq || !d.Destination.SubscribesToEvents) { continue; }
                    document ??= e.Message.Raw.Parse();
                    if (!d.Destination.Wants(e.Message.Type, e.Message.Event, document.RootElement)) { continue; }
                    var cause = new Cause(DeliveryKind.Event, e.Seq, e.ProfileId!, e.Message.Timestamp) { Event = e };
                    deliveries.Add(Capped(d.Destination, Build(d.Destination, cause, current, consent, now)));
                }
            }
            finally
            {
                document?.Dispose();
            }
        }

        return deliveries;
    }

    /// <summary>What a delivery is about.</summary>
    private sealed record Cause(string Kind, long Id, string ProfileId, DateTimeOffset At)
    {
        public string? SegmentId { get; init; }
        public string? SegmentName { get; init; }
        public string? Reason { get; init; }
        public StoredEvent? Event { get; init; }
    }

    private static NewDelivery Build(Destination destination, Cause cause, ProfileEngine engine, Dictionary<string, List<ConsentState>> consent, DateTimeOffset now)
    {
        var key = DeliveryKeys.For(destination.Id, cause.Kind, cause.Id);
        var profile = engine.SurvivorOf(cause.ProfileId) is { } survivor ? engine.Get(survivor) : null;
        // A Segment destination sends messages in Segment's format, not Tessera's delivery object.
        var payload = destination.Type != DestinationTypes.Segment ? Common(cause, key)
            : cause.Event is { } e ? SegmentMessages.Event(e)
            : SegmentMessages.AudienceChange(cause.Kind == DeliveryKind.AudienceEntered, cause.SegmentId!, cause.SegmentName, cause.At, key, cause.ProfileId, profile);
        string? skip = null;
        if (destination.Purpose is { } purpose && !Consents(engine, cause.ProfileId, purpose, consent))
        {
            skip = $"no consent for {purpose}";
        }

        if (destination.Type == DestinationTypes.Email && destination.Email is { } email)
        {
            var model = TemplateModel(cause, profile);
            var to = Address(email.To, profile);
            if (to is null) { skip ??= $"no email address in {email.To}"; }
            payload["to"] = to;
            payload["from"] = email.From;
            // Rendered once, here: every retry sends the same message, whatever happens to the profile meanwhile.
            payload["subject"] = skip is null ? EmailTemplates.Render(email.Subject, model, html: false).ReplaceLineEndings(" ") : null;
            payload["body"] = skip is null ? EmailTemplates.Render(email.Body, model, email.Html) : null;
            payload["html"] = email.Html;
        }
        else if (destination.Type != DestinationTypes.Segment)
        {
            payload["identifiers"] = profile is null ? new JsonObject() : Identifiers(profile);
            payload["traits"] = profile is null ? new JsonObject() : Traits(profile);
        }

        return new NewDelivery(destination.Id, cause.ProfileId, cause.Kind, cause.Id, key, payload.ToJsonString(),
            skip is null ? DeliveryStatus.Pending : DeliveryStatus.Skipped, skip, now);
    }

    /// <summary>The fields CONTRACT.md names: the profile, what happened, the audience or the event, the key and when.</summary>
    private static JsonObject Common(Cause cause, string key)
    {
        var payload = new JsonObject
        {
            ["idempotencyKey"] = key,
            ["type"] = cause.Kind,
            ["profileId"] = cause.ProfileId,
            ["at"] = MessageJson.Iso(cause.At),
        };
        if (cause.SegmentId is { } segment)
        {
            payload["segmentId"] = segment;
            payload["segment"] = new JsonObject { ["id"] = segment, ["name"] = cause.SegmentName };
            payload["reason"] = cause.Reason;
        }

        if (cause.Event is { } e)
        {
            payload["event"] = e.Message.Event;
            payload["message"] = MessageJson.From(e);
        }

        return payload;
    }

    /// <summary>
    /// The latest preference for <paramref name="purpose"/> stated by the profile or any profile merged into it.
    /// A profile that never stated one has not consented (opt-in).
    /// </summary>
    internal static bool Consents(ProfileEngine engine, string profileId, string purpose, Dictionary<string, List<ConsentState>> consent) =>
        LatestByCategory(Cluster(engine, profileId).SelectMany(id => consent.GetValueOrDefault(id) ?? [])).GetValueOrDefault(purpose) is { Granted: true };

    /// <summary>The latest statement (highest seq) of each category among <paramref name="states"/>: what counts as a profile's consent.</summary>
    internal static Dictionary<string, ConsentState> LatestByCategory(IEnumerable<ConsentState> states)
    {
        var latest = new Dictionary<string, ConsentState>(StringComparer.Ordinal);
        foreach (var s in states)
        {
            if (!latest.TryGetValue(s.Category, out var known) || s.Seq > known.Seq) { latest[s.Category] = s; }
        }

        return latest;
    }

    /// <summary>The profile, the live profile it now belongs to, and every profile merged into that one.</summary>
    internal static IEnumerable<string> Cluster(ProfileEngine engine, string profileId)
    {
        yield return profileId;
        if (engine.SurvivorOf(profileId) is not { } survivor || engine.Get(survivor) is not { } profile) { yield break; }
        if (survivor != profileId) { yield return survivor; }
        foreach (var merged in profile.MergedFrom) { yield return merged; }
    }

    /// <summary>The profile's identifiers by type (the first of each type), so a receiver can match its own records.</summary>
    internal static JsonObject Identifiers(ProfileView profile)
    {
        var identifiers = new JsonObject();
        foreach (var i in profile.Identifiers)
        {
            if (!identifiers.ContainsKey(i.Type)) { identifiers[i.Type] = i.Value; }
        }

        return identifiers;
    }

    internal static JsonObject Traits(ProfileView profile)
    {
        var traits = new JsonObject();
        foreach (var (name, value) in profile.Traits.OrderBy(t => t.Key, StringComparer.Ordinal)) { traits[name] = value.Value?.DeepClone(); }
        return traits;
    }

    private static Dictionary<string, object?> TemplateModel(Cause cause, ProfileView? profile)
    {
        var model = new Dictionary<string, object?>(StringComparer.Ordinal)
        {
            ["profile"] = new Dictionary<string, object?> { ["id"] = profile?.Id ?? cause.ProfileId },
            ["traits"] = profile is null ? new Dictionary<string, object?>() : profile.Traits.ToDictionary(t => t.Key, t => EmailTemplates.Plain(t.Value.Value), StringComparer.Ordinal),
            ["identifiers"] = profile is null ? new Dictionary<string, object?>() : profile.Identifiers.GroupBy(i => i.Type).ToDictionary(g => g.Key, g => (object?)g.First().Value, StringComparer.Ordinal),
            ["type"] = cause.Kind,
        };
        if (cause.SegmentId is { } segment) { model["segment"] = new Dictionary<string, object?> { ["id"] = segment, ["name"] = cause.SegmentName }; }
        if (cause.Event is { } e)
        {
            var message = e.Message.Raw.ParseNode() as JsonObject;
            model["event"] = new Dictionary<string, object?> { ["name"] = e.Message.Event, ["properties"] = EmailTemplates.Plain(message?["properties"]) };
        }

        return model;
    }

    /// <summary>The address <paramref name="path"/> (<c>traits.NAME</c> or <c>identifiers.TYPE</c>) names on the profile.</summary>
    internal static string? Address(string path, ProfileView? profile)
    {
        if (profile is null) { return null; }
        var dot = path.IndexOf('.', StringComparison.Ordinal);
        var (scope, name) = (path[..dot], path[(dot + 1)..]);
        var value = scope == "traits"
            ? profile.Traits.TryGetValue(name, out var trait) && trait.Value is JsonValue v && v.TryGetValue<string>(out var s) ? s : null
            : profile.Identifiers.Where(i => i.Type == name).Select(i => i.Value).FirstOrDefault();
        return MimeKit.MailboxAddress.TryParse(value ?? "", out var address) && address.Address.Contains('@', StringComparison.Ordinal) ? address.Address : null;
    }
}

/// <summary>A payload sent before its cause was committed; <see cref="Sent"/> completes with whether the receiver took it.</summary>
public sealed record ImmediateSend(string Payload, Task<bool> Sent, DateTimeOffset At);
