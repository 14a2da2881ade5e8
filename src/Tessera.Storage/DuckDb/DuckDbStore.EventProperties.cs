using System.Text;
using DuckDB.NET.Data;
using Tessera.Core.Collection;
using Tessera.Core.Profiles;
using Tessera.Storage.Audiences;
using Tessera.Storage.Events;

namespace Tessera.Storage.DuckDb;

/// <summary>What audience SQL reads besides the events: the typed copy of events' top-level properties (<see cref="EventProperties"/>), and whether any profile id was merged away.</summary>
public sealed partial class DuckDbStore
{
    private const string EventPropertiesBackfill = "backfill:event_properties";

    // Whether profile_ids may map an id to another live profile. Set before any commit that could write such a row, and
    // found out at open, so a reader never takes it false while the file holds one; audience SQL then skips the mapping
    // (a join probed by every event row read).
    private volatile bool _mayHaveMergedIds = true;

    /// <summary>
    /// Runs an audience query compiled by <paramref name="compile"/> (given whether it must map merged-away ids) and returns
    /// its reader. A query run without the mapping is run again with it when the flag was raised meanwhile: the flag is
    /// raised before any commit that writes a merged id, so a snapshot that holds one was taken after the flag rose.
    /// </summary>
    private async Task<(DuckDBCommand Command, System.Data.Common.DbDataReader Reader, AudienceSql Sql)> ReadAudienceAsync(
        DuckDBConnection connection, Func<bool, AudienceSql> compile, CancellationToken cancellationToken)
    {
        var merged = _mayHaveMergedIds;
        while (true)
        {
            var sql = compile(merged);
            var command = Command(connection, sql.Text, [.. sql.Parameters]);
            System.Data.Common.DbDataReader reader;
            try
            {
                reader = await command.ExecuteReaderAsync(cancellationToken);
            }
            catch (DuckDBException e)
            {
                await command.DisposeAsync();
                throw DuckDbErrors.Translate(e, sql.Text, options.Path);
            }

            if (merged || !_mayHaveMergedIds) { return (command, reader, sql); }
            await reader.DisposeAsync();
            await command.DisposeAsync();
            merged = true;
        }
    }

    private async Task DetectMergedIdsAsync(CancellationToken cancellationToken) =>
        _mayHaveMergedIds = await ScalarAsync<bool>("SELECT EXISTS (SELECT 1 FROM profile_ids WHERE id <> profile_id)", cancellationToken);

    /// <summary>
    /// Appends the properties of one append's events, inside its transaction. Typed here, on the committer's thread:
    /// typing them from the engine's own parse saved a parse but put the work on the engine's path, and the
    /// event-to-membership latency rose with it (docs/benchmarks.md).
    /// </summary>
    private static void AppendEventProperties(TableAppenders tables, (long Seq, CollectedEvent Event)[] events, IReadOnlyList<ProcessedEvent> processed)
    {
        var rows = new PropertyRows(tables);
        for (var i = 0; i < events.Length; i++)
        {
            var (seq, e) = events[i];
            rows.Append(seq, e, processed[i].ProfileId);
        }
    }

    /// <summary>
    /// The <c>event_properties</c> rows of events, the columns they repeat from their event encoded to UTF-8 once per
    /// event into buffers kept across events: DuckDB.NET encodes every string it is given into memory of its own, and an
    /// event has a row per property.
    /// </summary>
    private sealed class PropertyRows(TableAppenders tables)
    {
        private static readonly PropertyRowWriter<PropertyRows> AppendRow = static (rows, in row) => rows.Append(in row);

        private DuckDBAppender? _appender;
        private long _seq;
        private CollectedEvent? _event;
        private Utf8Column _eventName;
        private Utf8Column _profileId;

        public void Append(long seq, CollectedEvent e, string? profileId)
        {
            (_seq, _event, _appender) = (seq, e, null);
            _eventName.Set(e.Event);
            _profileId.Set(profileId);
            EventProperties.Write(e, this, AppendRow);
        }

        private void Append(in PropertyRow row)
        {
            _appender ??= tables.For("event_properties");
            var e = _event!;
            var columns = _appender.CreateRow()
                .AppendValue(_seq).AppendUtf8(_eventName.Value).AppendValue(e.Type == MessageType.Track).AppendValue(e.Timestamp);
            columns = _profileId.IsNull ? columns.AppendNullValue() : columns.AppendUtf8(_profileId.Value);
            columns.AppendUtf8(row.Name).AppendUtf8(row.Value.KindUtf8).AppendUtf8(row.Value.Text).AppendValue(row.Value.Number).AppendValue(row.Value.Instant)
                .EndRow();
        }
    }

    /// <summary>A string column's value as UTF-8, in a buffer reused from one value to the next; null stays null.</summary>
    private struct Utf8Column
    {
        private byte[]? _buffer;
        private int _length;

        public readonly bool IsNull => _length < 0;

        public readonly ReadOnlySpan<byte> Value => _length > 0 ? _buffer.AsSpan(0, _length) : [];

        public void Set(string? value)
        {
            if (value is null)
            {
                _length = -1;
                return;
            }

            var most = Encoding.UTF8.GetMaxByteCount(value.Length);
            if (_buffer is null || _buffer.Length < most) { _buffer = new byte[Math.Max(most, 64)]; }
            _length = Encoding.UTF8.GetBytes(value, _buffer);
        }
    }

    /// <summary>
    /// A store upgraded to the schema step that adds <c>event_properties</c> has it filled from its events here, at
    /// open, before any append: in one transaction with the removal of the settings row that says it is due, so a crash
    /// part way leaves it due.
    /// </summary>
    private async Task BackfillEventPropertiesAsync(CancellationToken cancellationToken)
    {
        if (await GetSettingAsync(EventPropertiesBackfill, cancellationToken) is null) { return; }
        var writer = _writer!;
        using var transaction = writer.BeginTransaction();
        Execute(writer, "DELETE FROM event_properties");
        using (var tables = new TableAppenders(writer))
        {
            var rows = new PropertyRows(tables);
            using var connection = OpenReader();
            using var command = Command(connection, $"SELECT {EventReader.Columns} FROM events WHERE event IS NOT NULL", []);
            using var reader = await command.ExecuteReaderAsync(cancellationToken);
            while (await reader.ReadAsync(cancellationToken))
            {
                var stored = EventReader.Read(reader, _raw);
                rows.Append(stored.Seq, stored.Message, stored.ProfileId);
            }
        }

        using (var done = Command(writer, "DELETE FROM settings WHERE key = $1", [EventPropertiesBackfill])) { done.ExecuteNonQuery(); }
        transaction.Commit();
    }
}
