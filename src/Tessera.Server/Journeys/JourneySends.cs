using System.Text.Json.Nodes;
using Tessera.Core.Activation;
using Tessera.Core.Journeys;
using Tessera.Core.Profiles;
using Tessera.Server.Activation;
using Tessera.Server.Management;
using Tessera.Storage.Activation;
using Tessera.Storage.Journeys;

namespace Tessera.Server.Journeys;

/// <summary>
/// Turns a send step into an outbox delivery to its destination, under the destination's own rules: consent for
/// its purpose, its frequency cap, and (for email) an address on the profile. The payload is built once, here, like
/// every delivery's, and says which journey, run and step sent it; the idempotency key is unique per journey,
/// profile, run and step (<see cref="JourneyKeys"/>).
/// </summary>
internal sealed class JourneySends
{
    /// <summary>The delivery type of a journey send (the <c>type</c> field a receiver reads).</summary>
    public const string Kind = "journey_step";

    private readonly ProfileEngine _engine;
    private readonly JourneyInput _input;
    private readonly Dictionary<string, Destination> _destinations;
    private readonly Dictionary<string, List<ConsentState>> _consent = new(StringComparer.Ordinal);

    public JourneySends(ProfileEngine engine, JourneyInput input)
    {
        _engine = engine;
        _input = input;
        _destinations = input.Destinations.ToDictionary(d => d.Destination.Id, d => d.Destination, StringComparer.Ordinal);
        foreach (var c in input.Consent)
        {
            if (!_consent.TryGetValue(c.ProfileId, out var list)) { _consent[c.ProfileId] = list = []; }
            list.Add(c);
        }
    }

    public NewDelivery Build(JourneySend send, string journeyName)
    {
        var position = send.Position;
        var key = send.IdempotencyKey;
        var profileId = position.ProfileId;
        var profile = _engine.SurvivorOf(profileId) is { } survivor ? _engine.Get(survivor) : null;
        var entry = JsonNode.Parse(position.Context) as JsonObject ?? [];
        var journey = new JsonObject
        {
            ["id"] = position.JourneyId,
            ["name"] = journeyName,
            ["version"] = position.Version,
            ["run"] = position.Run,
            ["step"] = send.Step.Id,
            ["enteredAt"] = MessageJson.Iso(position.EnteredAt),
        };
        var payload = new JsonObject
        {
            ["idempotencyKey"] = key,
            ["type"] = Kind,
            ["profileId"] = profileId,
            ["at"] = MessageJson.Iso(send.At),
            ["journey"] = journey,
            ["entry"] = entry.DeepClone(),
        };

        if (!_destinations.TryGetValue(send.Step.DestinationId, out var destination))
        {
            return Delivery(send, key, payload, DeliveryStatus.Cancelled, "destination deleted");
        }

        string? skip = null;
        if (!destination.Enabled) { skip = "destination disabled"; }
        if (destination.Purpose is { } purpose && !DeliveryDeriver.Consents(_engine, profileId, purpose, _consent)) { skip ??= $"no consent for {purpose}"; }

        if (destination.Type == DestinationTypes.Email && destination.Email is { } email)
        {
            var to = DeliveryDeriver.Address(email.To, profile);
            if (to is null) { skip ??= $"no email address in {email.To}"; }
            skip ??= Capped(destination, profileId);
            var model = Model(profile, profileId, journey, entry);
            payload["to"] = to;
            payload["from"] = email.From;
            payload["subject"] = skip is null ? EmailTemplates.Render(email.Subject, model, html: false).ReplaceLineEndings(" ") : null;
            payload["body"] = skip is null ? EmailTemplates.Render(email.Body, model, email.Html) : null;
            payload["html"] = email.Html;
        }
        else
        {
            skip ??= Capped(destination, profileId);
            payload["identifiers"] = profile is null ? new JsonObject() : DeliveryDeriver.Identifiers(profile);
            payload["traits"] = profile is null ? new JsonObject() : DeliveryDeriver.Traits(profile);
        }

        return Delivery(send, key, payload, skip is null ? DeliveryStatus.Pending : DeliveryStatus.Skipped, skip);
    }

    private NewDelivery Delivery(JourneySend send, string key, JsonObject payload, string status, string? reason) =>
        new(send.Step.DestinationId, send.Position.ProfileId, Kind, send.Position.Id, key, payload.ToJsonString(), status, reason, _input.Now);

    /// <summary>Null when the destination's frequency cap allows one more for this profile (and counts it); else the skip reason.</summary>
    private string? Capped(Destination destination, string profileId)
    {
        if (destination.FrequencyCap is not { } cap || !_input.Recent.TryGetValue(destination.Id, out var counts)) { return null; }
        var count = counts.GetValueOrDefault(profileId);
        if (count >= cap.Max) { return $"frequency cap: at most {cap.Max} per {cap.Per}"; }
        counts[profileId] = count + 1;
        return null;
    }

    /// <summary>What an email template reads: the profile, the journey, and what started the run (<c>event.*</c> or <c>segment.*</c>).</summary>
    private static Dictionary<string, object?> Model(ProfileView? profile, string profileId, JsonObject journey, JsonObject entry)
    {
        var model = new Dictionary<string, object?>(StringComparer.Ordinal)
        {
            ["profile"] = new Dictionary<string, object?> { ["id"] = profile?.Id ?? profileId },
            ["traits"] = profile is null ? new Dictionary<string, object?>() : profile.Traits.ToDictionary(t => t.Key, t => EmailTemplates.Plain(t.Value.Value), StringComparer.Ordinal),
            ["identifiers"] = profile is null ? new Dictionary<string, object?>() : profile.Identifiers.GroupBy(i => i.Type).ToDictionary(g => g.Key, g => (object?)g.First().Value, StringComparer.Ordinal),
            ["type"] = Kind,
            ["journey"] = EmailTemplates.Plain(journey),
        };
        if (entry["event"] is JsonObject e) { model["event"] = EmailTemplates.Plain(e); }
        if (entry["segment"] is JsonObject s) { model["segment"] = EmailTemplates.Plain(s); }
        return model;
    }
}
