namespace Tessera.Storage.Postgres;

/// <summary>
/// The PostgreSQL schema, as an ordered list of steps. A database is upgraded in place by running the steps it has
/// not seen yet, under an advisory lock so that processes starting together migrate once; a step is never edited
/// once released: add a new one. The columns follow <see cref="DuckDb.DuckDbMigrations"/>, with PostgreSQL's types.
/// </summary>
internal static class PostgresMigrations
{
    public static readonly IReadOnlyList<(int Version, string Description, string Sql)> Steps =
    [
        (1, "events, sources, settings", """
            CREATE TABLE events (
                seq bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
                message_id text NOT NULL,
                source_id text NOT NULL,
                type text NOT NULL,
                event text,
                user_id text,
                anonymous_id text,
                group_id text,
                previous_id text,
                profile_id text,
                timestamp timestamptz NOT NULL,
                original_timestamp timestamptz,
                sent_at timestamptz,
                received_at timestamptz NOT NULL,
                raw text NOT NULL
            );
            CREATE TABLE sources (
                id text PRIMARY KEY,
                name text NOT NULL,
                workspace text NOT NULL,
                write_key text NOT NULL UNIQUE,
                created_at timestamptz NOT NULL,
                revoked_at timestamptz
            );
            CREATE TABLE settings (
                key text PRIMARY KEY,
                value text NOT NULL
            );
            """),
        // Dedup must hold across processes, so the pairs live in the database, filled from the events already there.
        (2, "message_ids for dedup across processes; indexes for the event filters", """
            CREATE TABLE message_ids (
                source_id text NOT NULL,
                message_id text NOT NULL,
                received_at timestamptz NOT NULL,
                PRIMARY KEY (source_id, message_id)
            );
            CREATE INDEX message_ids_received_at ON message_ids (received_at);
            INSERT INTO message_ids (source_id, message_id, received_at)
                SELECT source_id, message_id, max(received_at) FROM events GROUP BY source_id, message_id;
            CREATE INDEX events_user_id ON events (user_id, seq);
            CREATE INDEX events_anonymous_id ON events (anonymous_id, seq);
            CREATE INDEX events_event ON events (event, seq);
            CREATE INDEX events_profile_id ON events (profile_id, seq);
            """),
    ];
}
