using DuckDB.NET.Data;
using Tessera.Core.Collection;
using Tessera.Storage.Events;
using Tessera.Storage.Sources;

namespace Tessera.Storage.DuckDb;

/// <summary>
/// The embedded store: one DuckDB file. One process owns the file (DuckDB locks it); all writes go through one
/// connection under <see cref="_writeLock"/>, reads use their own connections to the same database.
/// </summary>
public sealed class DuckDbStore(DuckDbStoreOptions options) : ITesseraStore
{
    private readonly SemaphoreSlim _writeLock = new(1, 1);
    private readonly MessageIdIndex _messageIds = new(options.DedupWindow);
    private DuckDBConnection? _writer;
    private long _lastSeq;

    public string Kind => "duckdb";

    public string Path => options.Path;

    public async Task OpenAsync(CancellationToken cancellationToken)
    {
        var directory = System.IO.Path.GetDirectoryName(System.IO.Path.GetFullPath(options.Path));
        if (directory is not null) { Directory.CreateDirectory(directory); }

        var connection = new DuckDBConnection($"Data Source={options.Path}");
        try
        {
            await connection.OpenAsync(cancellationToken);
        }
        catch (DuckDBException e)
        {
            await connection.DisposeAsync();
            throw DuckDbErrors.Translate(e, null, options.Path);
        }

        _writer = connection;
        await ExecuteAsync($"SET memory_limit = '{options.MemoryLimitMb}MB'; SET threads = {options.Threads};", cancellationToken);
        await MigrateAsync(cancellationToken);
        _lastSeq = await ScalarAsync<long>("SELECT coalesce(max(seq), 0) FROM events", cancellationToken);
        await LoadMessageIdsAsync(cancellationToken);
    }

    public Task<bool> IsAvailableAsync(CancellationToken cancellationToken) => Task.FromResult(_writer is not null);

    public async Task<AppendResult> AppendAsync(IReadOnlyList<CollectedEvent> events, CancellationToken cancellationToken)
    {
        var writer = _writer ?? throw new InvalidOperationException("The store is not open.");
        await _writeLock.WaitAsync(cancellationToken);
        try
        {
            var now = DateTimeOffset.UtcNow;
            _messageIds.SweepIfDue(now);
            var fresh = new List<(CollectedEvent Event, UInt128 Key)>(events.Count);
            var inThisAppend = new HashSet<UInt128>();
            foreach (var e in events)
            {
                var key = MessageIdIndex.Key(e.SourceId, e.MessageId);
                if (!_messageIds.Contains(key, now) && inThisAppend.Add(key)) { fresh.Add((e, key)); }
            }

            if (fresh.Count > 0)
            {
                var seq = _lastSeq;
                try
                {
                    using var appender = writer.CreateAppender("events");
                    foreach (var (e, _) in fresh)
                    {
                        appender.CreateRow()
                            .AppendValue(++seq)
                            .AppendValue(e.MessageId)
                            .AppendValue(e.SourceId)
                            .AppendValue(e.Type.Name())
                            .AppendValue(e.Event)
                            .AppendValue(e.UserId)
                            .AppendValue(e.AnonymousId)
                            .AppendValue(e.GroupId)
                            .AppendValue(e.PreviousId)
                            .AppendNullValue()
                            .AppendValue(e.Timestamp)
                            .AppendValue(e.OriginalTimestamp)
                            .AppendValue(e.SentAt)
                            .AppendValue(e.ReceivedAt)
                            .AppendValue(e.Raw)
                            .EndRow();
                    }

                    // Closing the appender commits; DuckDB syncs its write-ahead log on commit, so the rows are durable.
                    appender.Close();
                }
                catch (DuckDBException e)
                {
                    throw DuckDbErrors.Translate(e, "append to events", options.Path);
                }

                _lastSeq = seq;
                foreach (var (e, key) in fresh) { _messageIds.Add(key, e.ReceivedAt); }
            }

            return new AppendResult(fresh.Count, events.Count - fresh.Count);
        }
        finally
        {
            _writeLock.Release();
        }
    }

    public async Task<EventPage> QueryAsync(EventQuery query, CancellationToken cancellationToken)
    {
        using var connection = OpenReader();
        using var command = connection.CreateCommand();
        command.CommandText = EventReader.PageSql(query, value =>
        {
            command.Parameters.Add(new DuckDBParameter(value));
            return $"${command.Parameters.Count}";
        });
        return await EventReader.ReadPageAsync(command, query.Limit, cancellationToken);
    }

    public async Task<StoreStats> GetStatsAsync(CancellationToken cancellationToken)
    {
        var events = await ScalarAsync<long>("SELECT count(*) FROM events", cancellationToken);
        var sources = await ScalarAsync<long>("SELECT count(*) FROM sources", cancellationToken);
        return new StoreStats(events, sources, Profiles: 0, Identifiers: 0, Merges: 0, Segments: 0);
    }

    public async Task<Source> CreateSourceAsync(string name, string workspace, string writeKey, CancellationToken cancellationToken)
    {
        var source = new Source("src_" + Guid.CreateVersion7().ToString("N")[..20], name, workspace, writeKey, DateTimeOffset.UtcNow, null);
        await ExecuteAsync(
            "INSERT INTO sources (id, name, workspace, write_key, created_at) VALUES ($1, $2, $3, $4, $5)",
            cancellationToken, source.Id, source.Name, source.Workspace, source.WriteKey, source.CreatedAt);
        return source;
    }

    public Task<IReadOnlyList<Source>> ListSourcesAsync(CancellationToken cancellationToken) =>
        QuerySourcesAsync("ORDER BY created_at", cancellationToken);

    public async Task<Source?> GetSourceAsync(string id, CancellationToken cancellationToken) =>
        await FirstSourceAsync("WHERE id = $1", id, cancellationToken);

    public async Task<Source?> FindSourceByWriteKeyAsync(string writeKey, CancellationToken cancellationToken) =>
        await FirstSourceAsync("WHERE write_key = $1", writeKey, cancellationToken);

    public async Task<bool> RevokeSourceAsync(string id, CancellationToken cancellationToken) =>
        await ExecuteAsync(
            "UPDATE sources SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL",
            cancellationToken, DateTimeOffset.UtcNow, id) > 0
        || await GetSourceAsync(id, cancellationToken) is not null;

    public async Task<string?> GetSettingAsync(string key, CancellationToken cancellationToken) =>
        await ScalarAsync<string?>("SELECT value FROM settings WHERE key = $1", cancellationToken, key);

    public async Task<string> SetSettingIfAbsentAsync(string key, string value, CancellationToken cancellationToken)
    {
        await ExecuteAsync("INSERT INTO settings (key, value) VALUES ($1, $2) ON CONFLICT DO NOTHING", cancellationToken, key, value);
        return (await GetSettingAsync(key, cancellationToken))!;
    }

    public async ValueTask DisposeAsync()
    {
        if (_writer is null) { return; }
        await _writeLock.WaitAsync();
        try
        {
            // A checkpoint folds the write-ahead log into the file, so the next start does not replay it.
            await ExecuteAsync("CHECKPOINT", CancellationToken.None);
            await _writer.DisposeAsync();
            _writer = null;
        }
        finally
        {
            _writeLock.Release();
        }
    }

    private async Task MigrateAsync(CancellationToken cancellationToken)
    {
        await ExecuteAsync("CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, description VARCHAR, applied_at TIMESTAMPTZ)", cancellationToken);
        var current = await ScalarAsync<int>("SELECT coalesce(max(version), 0) FROM schema_migrations", cancellationToken);
        foreach (var (version, description, sql) in DuckDbMigrations.Steps.Where(s => s.Version > current && s.Version <= (options.MigrateUpTo ?? int.MaxValue)))
        {
            // One connection and one transaction per step: a step applies whole or not at all.
            using var connection = OpenReader();
            using var transaction = connection.BeginTransaction();
            try
            {
                using (var step = Command(connection, sql, [])) { await step.ExecuteNonQueryAsync(cancellationToken); }
                using (var record = Command(connection, "INSERT INTO schema_migrations VALUES ($1, $2, $3)", [version, description, DateTimeOffset.UtcNow]))
                {
                    await record.ExecuteNonQueryAsync(cancellationToken);
                }

                transaction.Commit();
            }
            catch (DuckDBException e)
            {
                throw DuckDbErrors.Translate(e, $"schema migration {version} ({description})", options.Path);
            }
        }
    }

    private async Task LoadMessageIdsAsync(CancellationToken cancellationToken)
    {
        using var connection = OpenReader();
        using var command = connection.CreateCommand();
        command.CommandText = "SELECT source_id, message_id, received_at FROM events WHERE received_at >= $1";
        command.Parameters.Add(new DuckDBParameter(DateTimeOffset.UtcNow - options.DedupWindow));
        using var reader = await command.ExecuteReaderAsync(cancellationToken);
        while (await reader.ReadAsync(cancellationToken))
        {
            _messageIds.Add(MessageIdIndex.Key(reader.GetString(0), reader.GetString(1)), reader.GetFieldValue<DateTimeOffset>(2));
        }
    }

    private async Task<Source?> FirstSourceAsync(string where, string value, CancellationToken cancellationToken)
    {
        var sources = await QuerySourcesAsync(where, cancellationToken, value);
        return sources.Count > 0 ? sources[0] : null;
    }

    private async Task<IReadOnlyList<Source>> QuerySourcesAsync(string tail, CancellationToken cancellationToken, params object?[] parameters)
    {
        using var connection = OpenReader();
        using var command = Command(connection, $"SELECT id, name, workspace, write_key, created_at, revoked_at FROM sources {tail}", parameters);
        using var reader = await command.ExecuteReaderAsync(cancellationToken);
        var sources = new List<Source>();
        while (await reader.ReadAsync(cancellationToken))
        {
            sources.Add(new Source(
                reader.GetString(0), reader.GetString(1), reader.GetString(2), reader.GetString(3),
                reader.GetFieldValue<DateTimeOffset>(4),
                reader.IsDBNull(5) ? null : reader.GetFieldValue<DateTimeOffset>(5)));
        }

        return sources;
    }

    // DuckDB.NET shares one database instance among all connections to the same file in a process,
    // so a connection per read is cheap and keeps reads off the writer's connection.
    private DuckDBConnection OpenReader()
    {
        if (_writer is null) { throw new InvalidOperationException("The store is not open."); }
        var connection = new DuckDBConnection(_writer.ConnectionString);
        connection.Open();
        return connection;
    }

    private static DuckDBCommand Command(DuckDBConnection connection, string sql, object?[] parameters)
    {
        var command = connection.CreateCommand();
        command.CommandText = sql;
        foreach (var p in parameters) { command.Parameters.Add(new DuckDBParameter(p ?? DBNull.Value)); }
        return command;
    }

    private async Task<int> ExecuteAsync(string sql, CancellationToken cancellationToken, params object?[] parameters)
    {
        using var connection = OpenReader();
        using var command = Command(connection, sql, parameters);
        try
        {
            return await command.ExecuteNonQueryAsync(cancellationToken);
        }
        catch (DuckDBException e)
        {
            throw DuckDbErrors.Translate(e, sql, options.Path);
        }
    }

    private async Task<T> ScalarAsync<T>(string sql, CancellationToken cancellationToken, params object?[] parameters)
    {
        using var connection = OpenReader();
        using var command = Command(connection, sql, parameters);
        try
        {
            var value = await command.ExecuteScalarAsync(cancellationToken);
            return value is null or DBNull ? default! : (T)Convert.ChangeType(value, Nullable.GetUnderlyingType(typeof(T)) ?? typeof(T));
        }
        catch (DuckDBException e)
        {
            throw DuckDbErrors.Translate(e, sql, options.Path);
        }
    }
}
