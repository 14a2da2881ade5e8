using System.Data.Common;
using Tessera.Core.Collection;

namespace Tessera.Storage.Events;

/// <summary>Reads the events table the same way for every store; the SQL around it is the store's own.</summary>
internal static class EventReader
{
    public const string Columns =
        "seq, message_id, source_id, type, event, user_id, anonymous_id, group_id, previous_id, profile_id, " +
        "timestamp, original_timestamp, sent_at, received_at, raw";

    /// <summary>The query's conditions as (SQL up to the parameter, value); the store adds its own placeholder.</summary>
    public static IEnumerable<(string Condition, object Value)> Filters(EventQuery query)
    {
        if (query.Before is { } before) { yield return ("seq <", before); }
        if (query.Type is { } type) { yield return ("type =", type.Name()); }
        if (query.Event is { } name) { yield return ("event =", name); }
        if (query.UserId is { } userId) { yield return ("user_id =", userId); }
        if (query.AnonymousId is { } anonymousId) { yield return ("anonymous_id =", anonymousId); }
        if (query.ProfileId is { } profileId) { yield return ("profile_id =", profileId); }
        if (query.SourceId is { } sourceId) { yield return ("source_id =", sourceId); }
    }

    /// <summary>
    /// The page query, the same text for every store: <paramref name="addParameter"/> binds a value and returns its
    /// placeholder (both DuckDB and Npgsql take <c>$1, $2, ...</c>). One row more than the limit tells whether a next page exists.
    /// </summary>
    public static string PageSql(EventQuery query, Func<object, string> addParameter)
    {
        var where = new List<string>();
        foreach (var (condition, value) in Filters(query)) { where.Add($"{condition} {addParameter(value)}"); }
        return $"""
            SELECT {Columns} FROM events
            {(where.Count > 0 ? "WHERE " + string.Join(" AND ", where) : "")}
            ORDER BY seq DESC LIMIT {query.Limit + 1}
            """;
    }

    public static async Task<EventPage> ReadPageAsync(DbCommand command, int limit, CancellationToken cancellationToken)
    {
        using var reader = await command.ExecuteReaderAsync(cancellationToken);
        var items = new List<StoredEvent>(Math.Min(limit + 1, 1000));
        while (await reader.ReadAsync(cancellationToken))
        {
            items.Add(Read(reader));
        }

        long? next = null;
        if (items.Count > limit)
        {
            items.RemoveAt(items.Count - 1);
            next = items[^1].Seq;
        }

        return new EventPage(items, next);
    }

    private static StoredEvent Read(DbDataReader r)
    {
        string? Text(int i) => r.IsDBNull(i) ? null : r.GetString(i);
        DateTimeOffset? Time(int i) => r.IsDBNull(i) ? null : r.GetFieldValue<DateTimeOffset>(i).ToUniversalTime();
        if (!MessageTypes.TryParse(r.GetString(3), out var type))
        {
            throw new StoreException($"Event {r.GetInt64(0)} has an unknown type '{r.GetString(3)}'.");
        }

        var message = new CollectedEvent(
            MessageId: r.GetString(1),
            SourceId: r.GetString(2),
            Type: type,
            Event: Text(4),
            UserId: Text(5),
            AnonymousId: Text(6),
            GroupId: Text(7),
            PreviousId: Text(8),
            Timestamp: Time(10)!.Value,
            OriginalTimestamp: Time(11),
            SentAt: Time(12),
            ReceivedAt: Time(13)!.Value,
            Raw: r.GetString(14));
        return new StoredEvent(r.GetInt64(0), message, Text(9));
    }
}
