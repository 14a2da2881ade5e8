namespace Tessera.Storage.DuckDb;

/// <summary>
/// The DuckDB file's schema, as an ordered list of steps. A file is upgraded in place by running the steps it has
/// not seen yet; a step is never edited once released: add a new one.
/// </summary>
internal static class DuckDbMigrations
{
    /// <summary>The step from which <c>events.raw</c> is a BLOB written by <see cref="RawCodec"/> (text before it).</summary>
    public const int CompressedRawVersion = 11;

    /// <summary>The step from which the columns of <c>events</c> and <c>event_properties</c> have their compression chosen.</summary>
    public const int ChosenCompressionVersion = 12;

    public static readonly IReadOnlyList<(int Version, string Description, string Sql)> Steps =
    [
        (1, "events, sources, settings", """
            CREATE TABLE events (
                seq BIGINT NOT NULL,
                message_id VARCHAR NOT NULL,
                source_id VARCHAR NOT NULL,
                type VARCHAR NOT NULL,
                event VARCHAR,
                user_id VARCHAR,
                anonymous_id VARCHAR,
                group_id VARCHAR,
                previous_id VARCHAR,
                profile_id VARCHAR,
                timestamp TIMESTAMPTZ NOT NULL,
                original_timestamp TIMESTAMPTZ,
                sent_at TIMESTAMPTZ,
                received_at TIMESTAMPTZ NOT NULL,
                raw VARCHAR NOT NULL
            );
            CREATE TABLE sources (
                id VARCHAR PRIMARY KEY,
                name VARCHAR NOT NULL,
                workspace VARCHAR NOT NULL,
                write_key VARCHAR NOT NULL UNIQUE,
                created_at TIMESTAMPTZ NOT NULL,
                revoked_at TIMESTAMPTZ
            );
            CREATE TABLE settings (
                key VARCHAR PRIMARY KEY,
                value VARCHAR NOT NULL
            );
            """),
        (2, "identity log and trait history", """
            CREATE TABLE identity_changes (
                seq BIGINT NOT NULL,
                ordinal INTEGER NOT NULL,
                kind VARCHAR NOT NULL,
                profile_id VARCHAR,
                other_profile_id VARCHAR,
                id_type VARCHAR,
                id_value VARCHAR,
                occurred_at TIMESTAMPTZ NOT NULL,
                cause VARCHAR NOT NULL,
                detail VARCHAR,
                identifiers VARCHAR
            );
            CREATE TABLE trait_changes (
                seq BIGINT NOT NULL,
                profile_id VARCHAR NOT NULL,
                name VARCHAR NOT NULL,
                value VARCHAR,
                occurred_at TIMESTAMPTZ NOT NULL,
                source_id VARCHAR NOT NULL
            );
            """),
        (3, "identity separations (unmerges)", """
            CREATE TABLE identity_separations (
                id_type VARCHAR NOT NULL,
                id_value VARCHAR NOT NULL,
                apart_from VARCHAR NOT NULL,
                occurred_at TIMESTAMPTZ NOT NULL,
                reason VARCHAR NOT NULL
            );
            """),
        (4, "computed trait definitions made through the API", """
            CREATE TABLE computed_traits (
                name VARCHAR PRIMARY KEY,
                definition VARCHAR NOT NULL,
                created_at TIMESTAMPTZ NOT NULL
            );
            """),
        // Filled from the engine at the first open after this step (DuckDbStore.WriteProfileStateIfMissingAsync), then
        // kept by every append in the same transaction as its events. profile_ids maps every profile id ever made to the
        // live profile it resolves to, so events, identifiers and merged-away traits reach their live profile through it.
        // Appends add trait values to profile_trait_updates (no index); DuckDbStore folds them into profile_traits in
        // large groups, because an upsert into profile_traits costs ~150 ms whatever its size at a million rows.
        (5, "profile state for audiences in SQL: profile ids, identifiers, current traits", """
            CREATE TABLE profile_ids (
                id VARCHAR NOT NULL,
                profile_id VARCHAR NOT NULL
            );
            CREATE TABLE profile_identifiers (
                profile_id VARCHAR NOT NULL,
                id_type VARCHAR NOT NULL,
                id_value VARCHAR NOT NULL
            );
            CREATE TABLE profile_traits (
                profile_id VARCHAR NOT NULL,
                name VARCHAR NOT NULL,
                value VARCHAR,
                kind VARCHAR NOT NULL,
                text VARCHAR,
                num DECIMAL(38, 12),
                instant TIMESTAMPTZ,
                PRIMARY KEY (profile_id, name)
            );
            CREATE TABLE profile_trait_updates (
                profile_id VARCHAR NOT NULL,
                name VARCHAR NOT NULL,
                value VARCHAR,
                kind VARCHAR NOT NULL,
                text VARCHAR,
                num DECIMAL(38, 12),
                instant TIMESTAMPTZ,
                version BIGINT NOT NULL
            );
            """),
        (6, "audiences and their entries and exits", """
            CREATE TABLE audiences (
                id VARCHAR PRIMARY KEY,
                name VARCHAR NOT NULL,
                description VARCHAR,
                definition VARCHAR NOT NULL,
                created_at TIMESTAMPTZ NOT NULL,
                updated_at TIMESTAMPTZ NOT NULL
            );
            CREATE TABLE audience_changes (
                id BIGINT NOT NULL,
                audience_id VARCHAR NOT NULL,
                profile_id VARCHAR NOT NULL,
                entered BOOLEAN NOT NULL,
                occurred_at TIMESTAMPTZ NOT NULL,
                seq BIGINT,
                reason VARCHAR NOT NULL
            );
            """),
        // Step 6 is another branch's; activation takes 7 so the two can merge in either order.
        (7, "activation: destinations, the outbox and delivery log, consent preferences, the derivation cursor", """
            CREATE TABLE destinations (
                id VARCHAR PRIMARY KEY,
                name VARCHAR NOT NULL,
                type VARCHAR NOT NULL,
                config VARCHAR NOT NULL,
                created_at TIMESTAMPTZ NOT NULL,
                updated_at TIMESTAMPTZ NOT NULL,
                after_change_id BIGINT NOT NULL,
                after_seq BIGINT NOT NULL
            );
            CREATE TABLE deliveries (
                id BIGINT NOT NULL,
                destination_id VARCHAR NOT NULL,
                profile_id VARCHAR NOT NULL,
                kind VARCHAR NOT NULL,
                cause_id BIGINT NOT NULL,
                idempotency_key VARCHAR NOT NULL,
                payload VARCHAR NOT NULL,
                status VARCHAR NOT NULL,
                reason VARCHAR,
                attempts INTEGER NOT NULL,
                next_attempt_at TIMESTAMPTZ,
                last_error VARCHAR,
                claimed_by VARCHAR,
                claimed_until TIMESTAMPTZ,
                created_at TIMESTAMPTZ NOT NULL,
                updated_at TIMESTAMPTZ NOT NULL,
                delivered_at TIMESTAMPTZ
            );
            CREATE TABLE consent_changes (
                seq BIGINT NOT NULL,
                profile_id VARCHAR NOT NULL,
                category VARCHAR NOT NULL,
                granted BOOLEAN NOT NULL,
                occurred_at TIMESTAMPTZ NOT NULL
            );
            CREATE TABLE activation_cursor (
                only_row BOOLEAN PRIMARY KEY DEFAULT true CHECK (only_row),
                change_id BIGINT NOT NULL,
                seq BIGINT NOT NULL
            );
            INSERT INTO activation_cursor (change_id, seq) VALUES (0, 0);
            """),
        (8, "journeys: definitions and their versions, each run's position, run history, the journey cursor", """
            CREATE TABLE journeys (
                id VARCHAR PRIMARY KEY,
                name VARCHAR NOT NULL,
                description VARCHAR,
                status VARCHAR NOT NULL,
                version INTEGER NOT NULL,
                created_at TIMESTAMPTZ NOT NULL,
                updated_at TIMESTAMPTZ NOT NULL,
                after_change_id BIGINT NOT NULL,
                after_seq BIGINT NOT NULL
            );
            CREATE TABLE journey_versions (
                journey_id VARCHAR NOT NULL,
                version INTEGER NOT NULL,
                definition VARCHAR NOT NULL,
                created_at TIMESTAMPTZ NOT NULL
            );
            CREATE TABLE journey_positions (
                id BIGINT NOT NULL,
                journey_id VARCHAR NOT NULL,
                profile_id VARCHAR NOT NULL,
                run INTEGER NOT NULL,
                version INTEGER NOT NULL,
                step_id VARCHAR NOT NULL,
                state VARCHAR NOT NULL,
                waiting BOOLEAN NOT NULL,
                due_at TIMESTAMPTZ,
                wait_event VARCHAR,
                wait_after_seq BIGINT NOT NULL,
                entered_at TIMESTAMPTZ NOT NULL,
                step_entered_at TIMESTAMPTZ NOT NULL,
                updated_at TIMESTAMPTZ NOT NULL,
                ended_at TIMESTAMPTZ,
                reason VARCHAR,
                context VARCHAR NOT NULL
            );
            CREATE TABLE journey_history (
                id BIGINT NOT NULL,
                position_id BIGINT NOT NULL,
                journey_id VARCHAR NOT NULL,
                profile_id VARCHAR NOT NULL,
                run INTEGER NOT NULL,
                step_id VARCHAR NOT NULL,
                action VARCHAR NOT NULL,
                detail VARCHAR,
                occurred_at TIMESTAMPTZ NOT NULL
            );
            CREATE TABLE journey_cursor (
                only_row BOOLEAN PRIMARY KEY DEFAULT true CHECK (only_row),
                change_id BIGINT NOT NULL,
                seq BIGINT NOT NULL
            );
            INSERT INTO journey_cursor (change_id, seq) VALUES (0, 0);
            """),
        // (Step 9 was never released.) The typed copy of events' top-level properties that audience
        // conditions read (Audiences/EventProperties), one row per (event, member), written with the event. A store
        // upgraded to this step is filled from its events at its next open (DuckDbStore.BackfillEventPropertiesAsync),
        // in one transaction, while the settings row below says it is due.
        (10, "event properties typed for audiences", """
            CREATE TABLE event_properties (
                seq BIGINT NOT NULL,
                event VARCHAR NOT NULL,
                track BOOLEAN NOT NULL,
                ts TIMESTAMPTZ NOT NULL,
                profile_id VARCHAR,
                name VARCHAR NOT NULL,
                kind VARCHAR NOT NULL,
                text VARCHAR,
                num DECIMAL(38, 12),
                instant TIMESTAMPTZ
            );
            INSERT INTO settings (key, value) SELECT 'backfill:event_properties', 'due' WHERE EXISTS (SELECT 1 FROM events);
            """),
        // The raw JSON compressed with dictionaries trained on the store's own messages (RawCodec): the column becomes
        // a BLOB, and the rows already there keep their text as UTF-8 (a value starting with '{' is plain text). A
        // copy, not ALTER … SET DATA TYPE … USING: DuckDB 1.5.6 cannot replay that statement from its log ("no default
        // database set"), so a crash before the next checkpoint would leave a file it cannot open.
        (CompressedRawVersion, "raw JSON compressed with trained dictionaries", """
            CREATE TABLE events_v11 (
                seq BIGINT NOT NULL,
                message_id VARCHAR NOT NULL,
                source_id VARCHAR NOT NULL,
                type VARCHAR NOT NULL,
                event VARCHAR,
                user_id VARCHAR,
                anonymous_id VARCHAR,
                group_id VARCHAR,
                previous_id VARCHAR,
                profile_id VARCHAR,
                timestamp TIMESTAMPTZ NOT NULL,
                original_timestamp TIMESTAMPTZ,
                sent_at TIMESTAMPTZ,
                received_at TIMESTAMPTZ NOT NULL,
                raw BLOB NOT NULL
            );
            INSERT INTO events_v11 SELECT * REPLACE (encode(raw) AS raw) FROM events ORDER BY seq;
            DROP TABLE events;
            ALTER TABLE events_v11 RENAME TO events;
            CREATE TABLE raw_dictionaries (
                id INTEGER PRIMARY KEY,
                first_seq BIGINT NOT NULL,
                trained_at TIMESTAMPTZ NOT NULL,
                samples INTEGER NOT NULL,
                dictionary BLOB NOT NULL
            );
            """),
        // Each column of the two tables every event writes to gets the compression DuckDB's analysis chose for it anyway,
        // so a checkpoint compresses with it instead of trying every method on every segment first (hashing each string
        // for a dictionary, training FSST on samples): names, kinds, types and sources in dictionaries, message ids and
        // property texts in FSST, the raw column (zstd's output, RawCodec) as it is. Columns whose best method depends on
        // the data (the person ids) keep the analysis. Measured in docs/benchmarks.md ("Each column's compression
        // chosen"). DuckDB cannot change a column's compression in place: the tables are copied, in their order.
        (ChosenCompressionVersion, "each column's compression chosen instead of analysed at every checkpoint", """
            CREATE TABLE events_v12 (
                seq BIGINT NOT NULL,
                message_id VARCHAR NOT NULL USING COMPRESSION fsst,
                source_id VARCHAR NOT NULL USING COMPRESSION dictionary,
                type VARCHAR NOT NULL USING COMPRESSION dictionary,
                event VARCHAR USING COMPRESSION dictionary,
                user_id VARCHAR,
                anonymous_id VARCHAR,
                group_id VARCHAR,
                previous_id VARCHAR,
                profile_id VARCHAR,
                timestamp TIMESTAMPTZ NOT NULL,
                original_timestamp TIMESTAMPTZ,
                sent_at TIMESTAMPTZ,
                received_at TIMESTAMPTZ NOT NULL,
                raw BLOB NOT NULL USING COMPRESSION uncompressed
            );
            INSERT INTO events_v12 SELECT * FROM events;
            DROP TABLE events;
            ALTER TABLE events_v12 RENAME TO events;
            CREATE TABLE event_properties_v12 (
                seq BIGINT NOT NULL,
                event VARCHAR NOT NULL USING COMPRESSION dictionary,
                track BOOLEAN NOT NULL,
                ts TIMESTAMPTZ NOT NULL,
                profile_id VARCHAR,
                name VARCHAR NOT NULL USING COMPRESSION dictionary,
                kind VARCHAR NOT NULL USING COMPRESSION dictionary,
                text VARCHAR USING COMPRESSION fsst,
                num DECIMAL(38, 12),
                instant TIMESTAMPTZ
            );
            INSERT INTO event_properties_v12 SELECT * FROM event_properties;
            DROP TABLE event_properties;
            ALTER TABLE event_properties_v12 RENAME TO event_properties;
            """),
    ];
}
