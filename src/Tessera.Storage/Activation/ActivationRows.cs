using System.Data.Common;
using System.Text.Json;
using Tessera.Core.Activation;
using Tessera.Core.Conditions;
using Tessera.Storage.Audiences;
using Tessera.Storage.Events;

namespace Tessera.Storage.Activation;

/// <summary>The activation tables' columns, rows and shared steps, for both stores.</summary>
internal static class ActivationRows
{
    public const string DestinationColumns = "id, config, after_change_id, after_seq";

    public const string DeliveryColumns =
        "id, destination_id, profile_id, kind, cause_id, idempotency_key, payload, status, reason, attempts, next_attempt_at, last_error, created_at, updated_at, delivered_at";

    /// <summary>Most audience changes, and the widest span of event seqs, one derivation step reads.</summary>
    public const int ChangeStep = 10_000;

    public const int EventStep = 20_000;

    public static string ConfigJson(Destination destination) => JsonSerializer.Serialize(destination, ConditionJson.Options);

    public static StoredDestination ReadDestination(DbDataReader r) => new(
        JsonSerializer.Deserialize<Destination>(r.GetString(1), ConditionJson.Options) ?? throw new InvalidDataException($"destination {r.GetString(0)}: empty configuration"),
        r.GetInt64(2), r.GetInt64(3));

    public static Delivery ReadDelivery(DbDataReader r) => new(
        r.GetInt64(0), r.GetString(1), r.GetString(2), r.GetString(3), r.GetInt64(4), r.GetString(5), r.GetString(6), r.GetString(7),
        r.IsDBNull(8) ? null : r.GetString(8), r.GetInt32(9), r.IsDBNull(10) ? null : AudienceRows.Time(r, 10), r.IsDBNull(11) ? null : r.GetString(11),
        AudienceRows.Time(r, 12), AudienceRows.Time(r, 13), r.IsDBNull(14) ? null : AudienceRows.Time(r, 14));

    public static ConsentState ReadConsent(DbDataReader r) => new(r.GetString(0), r.GetString(1), r.GetBoolean(2), r.GetInt64(3), AudienceRows.Time(r, 4));

    /// <summary>
    /// The SQL condition on events for <paramref name="interest"/>, besides the seq range: the subscribed events,
    /// and any message that states consent (the store records those for every profile, subscribed or not).
    /// <paramref name="rawText"/> is the message's JSON text in the store's SQL (DuckDB keeps it compressed).
    /// </summary>
    public static string EventCondition(EventInterest interest, Func<object, string> bind, string rawText = "raw")
    {
        var consent = $"{rawText} LIKE {bind("%" + Consent.Marker + "%")}";
        if (interest.AnyTrack) { return $"(type = 'track' OR {consent})"; }
        if (interest.Names.Count == 0) { return consent; }
        return $"((type = 'track' AND event IN ({string.Join(", ", interest.Names.Select(n => bind(n)))})) OR {consent})";
    }

    /// <summary>
    /// The preference rows to add for the consent <paramref name="events"/> state, in log order: only where a
    /// category's value differs from the latest known one (<paramref name="known"/>, updated as it goes).
    /// </summary>
    public static List<ConsentState> ConsentChanges(IReadOnlyList<StoredEvent> events, Dictionary<(string Profile, string Category), ConsentState> known)
    {
        var rows = new List<ConsentState>();
        foreach (var e in events)
        {
            if (e.ProfileId is not { } profile || !e.Message.Raw.Contains(Consent.Marker)) { continue; }
            using var document = e.Message.Raw.Parse();
            foreach (var (category, granted) in Consent.Read(document.RootElement))
            {
                if (known.TryGetValue((profile, category), out var current) && (current.Granted == granted || current.Seq >= e.Seq)) { continue; }
                var row = new ConsentState(profile, category, granted, e.Seq, e.Message.Timestamp);
                known[(profile, category)] = row;
                rows.Add(row);
            }
        }

        return rows;
    }

    /// <summary>
    /// Counts, per profile in list parameter <c>$3</c> (<paramref name="inList"/> writes the store's "IN list"), the
    /// deliveries to destination <c>$1</c> created after <c>$2</c> that count against its frequency cap.
    /// </summary>
    public static string CapCounts(string inList) => $"""
        SELECT profile_id, count(*) FROM deliveries
        WHERE destination_id = $1 AND created_at > $2 AND status IN ('pending', 'delivered', 'dead') AND profile_id {inList}
        GROUP BY profile_id
        """;

    /// <summary>The destinations with a frequency cap, each with when its window starts.</summary>
    public static IEnumerable<(string Id, DateTimeOffset Since)> Capped(IReadOnlyList<StoredDestination> destinations, DateTimeOffset now) =>
        destinations.Where(d => d.Destination.Enabled && d.Destination.FrequencyCap is not null).Select(d => (d.Destination.Id, now - d.Destination.FrequencyCap!.Period));

    /// <summary>Every profile a step's causes name.</summary>
    public static List<string> CauseProfiles(IReadOnlyList<StoredAudienceChange> changes, IReadOnlyList<StoredEvent> events) =>
        [.. changes.Select(c => c.Change.ProfileId).Concat(events.Select(e => e.ProfileId!)).Distinct(StringComparer.Ordinal)];

    /// <summary>The profiles named by events that state consent.</summary>
    public static HashSet<string> ConsentStaters(IReadOnlyList<StoredEvent> events) =>
        events.Where(e => e.ProfileId is not null && e.Message.Raw.Contains(Consent.Marker)).Select(e => e.ProfileId!).ToHashSet(StringComparer.Ordinal);
}
