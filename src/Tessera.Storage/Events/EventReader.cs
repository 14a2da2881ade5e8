using System.Data.Common;
using Tessera.Core.Collection;

namespace Tessera.Storage.Events;

/// <summary>Reads the events table the same way for every store; the SQL around it is the store's own.</summary>
internal static class EventReader
{
    public const string Columns =
        "seq, message_id, source_id, type, event, user_id, anonymous_id, group_id, previous_id, profile_id, " +
        "timestamp, original_timestamp, sent_at, received_at, raw";

    /// <summary>
    /// The query's conditions as SQL. <paramref name="bind"/> adds a parameter and returns its placeholder in the
    /// store's dialect, so values are always bound, never spliced into the text.
    /// </summary>
    public static List<string> Conditions(EventQuery query, Func<object, string> bind)
    {
        var conditions = new List<string>();
        if (query.Before is { } before) { conditions.Add($"seq < {bind(before)}"); }
        if (query.Type is { } type) { conditions.Add($"type = {bind(type.Name())}"); }
        if (query.Event is { } name) { conditions.Add($"event = {bind(name)}"); }
        if (query.UserId is { } userId) { conditions.Add($"user_id = {bind(userId)}"); }
        if (query.AnonymousId is { } anonymousId) { conditions.Add($"anonymous_id = {bind(anonymousId)}"); }
        if (query.SourceId is { } sourceId) { conditions.Add($"source_id = {bind(sourceId)}"); }
        if (query.ProfileIds is { } profileIds)
        {
            conditions.Add(profileIds.Count == 0 ? "false" : $"profile_id IN ({string.Join(", ", profileIds.Select(id => bind(id)))})");
        }

        return conditions;
    }

    /// <summary>
    /// The page query, the same text for every store: <paramref name="addParameter"/> binds a value and returns its
    /// placeholder (both DuckDB and Npgsql take <c>$1, $2, ...</c>). One row more than the limit tells whether a next page exists.
    /// </summary>
    public static string PageSql(EventQuery query, Func<object, string> addParameter)
    {
        var where = Conditions(query, addParameter);
        return $"""
            SELECT {Columns} FROM events
            {(where.Count > 0 ? "WHERE " + string.Join(" AND ", where) : "")}
            ORDER BY seq DESC LIMIT {query.Limit + 1}
            """;
    }

    public static async Task<EventPage> ReadPageAsync(DbCommand command, int limit, CancellationToken cancellationToken, DuckDb.RawCodec? raw = null)
    {
        using var reader = await command.ExecuteReaderAsync(cancellationToken);
        var items = new List<StoredEvent>(Math.Min(limit + 1, 1000));
        while (await reader.ReadAsync(cancellationToken))
        {
            items.Add(Read(reader, raw));
        }

        long? next = null;
        if (items.Count > limit)
        {
            items.RemoveAt(items.Count - 1);
            next = items[^1].Seq;
        }

        return new EventPage(items, next);
    }

    /// <summary>
    /// One row of <see cref="Columns"/>. <paramref name="raw"/> reads the DuckDB store's <c>raw</c> BLOB
    /// (<see cref="DuckDb.RawCodec"/>); a text column (PostgreSQL, or a DuckDB file at an older schema) is read as it is.
    /// </summary>
    public static StoredEvent Read(DbDataReader r, DuckDb.RawCodec? raw = null)
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
            Raw: RawOf(r, 14, raw));
        return new StoredEvent(r.GetInt64(0), message, Text(9));
    }

    private static RawJson RawOf(DbDataReader r, int i, DuckDb.RawCodec? codec)
    {
        if (codec is null || r.GetFieldType(i) == typeof(string)) { return r.GetString(i); }
        using var stream = r.GetStream(i);
        return new RawJson(codec.Decode(stream));
    }
}
