using System.Diagnostics;
using System.Text;
using DuckDB.NET.Data;
using Microsoft.Extensions.Logging;
using Tessera.Core.Collection;
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
    /// Appends the properties of one append's events, inside its transaction, from the rows typed when the events were
    /// packed (<see cref="PropertyPacker"/>): the committer only appends them.
    /// </summary>
    private static void AppendEventProperties(TableAppenders tables, StagedEvents events)
    {
        var rows = new PropertyRows(tables);
        foreach (var e in events) { rows.Append(e); }
        tables.Counted("event_properties", rows.Appended);
    }

    /// <summary>
    /// The <c>event_properties</c> rows of events, the columns they repeat from their event as UTF-8: DuckDB.NET encodes
    /// every string it is given into memory of its own, and an event has a row per property.
    /// </summary>
    private sealed class PropertyRows(TableAppenders tables)
    {
        private static readonly PropertyRowWriter<PropertyRows> AppendRow = static (rows, in row) => rows.Append(in row);

        private DuckDBAppender? _appender;
        private long _seq;
        private bool _track;
        private DateTimeOffset _timestamp;
        private Utf8Text _eventName;
        private Utf8Text _profileId;
        private Utf8Column _eventNameText;
        private Utf8Column _profileIdText;

        /// <summary>A packed event's rows, as packed (none without an event name).</summary>
        public void Append(in StagedEvent e)
        {
            if (e.Properties.IsEmpty) { return; }
            (_seq, _track, _timestamp, _eventName, _profileId, _appender) = (e.Seq, e.Type == MessageType.Track, e.Timestamp, e.Event, e.ProfileId, null);
            foreach (var row in new PackedPropertyRows(e.Properties.Span)) { Append(in row); }
        }

        /// <summary>A stored event's rows (none without an event name).</summary>
        public void Append(long seq, CollectedEvent e, string? profileId)
        {
            if (e.Event is null) { return; }
            (_seq, _track, _timestamp, _eventName, _profileId, _appender) = (seq, e.Type == MessageType.Track, e.Timestamp, _eventNameText.Set(e.Event), _profileIdText.Set(profileId), null);
            EventProperties.Write(named: true, e.Raw.Utf8, this, AppendRow);
        }

        /// <summary>The rows appended.</summary>
        public long Appended { get; private set; }

        private void Append(in PropertyRow row)
        {
            Appended++;
            _appender ??= tables.For("event_properties");
            _appender.CreateRow()
                .AppendValue(_seq).AppendText(_eventName).AppendValue(_track).AppendValue(_timestamp).AppendText(_profileId)
                .AppendUtf8(row.Name).AppendUtf8(row.Value.KindUtf8).AppendUtf8(row.Value.Text).AppendValue(row.Value.Number).AppendValue(row.Value.Instant)
                .EndRow();
        }
    }

    /// <summary>A string as UTF-8, in a buffer reused from one value to the next.</summary>
    private struct Utf8Column
    {
        private byte[]? _buffer;

        /// <summary>Encodes <paramref name="value"/> into the buffer; the result is valid until the next call.</summary>
        public Utf8Text Set(string? value)
        {
            if (value is null) { return default; }
            var most = Encoding.UTF8.GetMaxByteCount(value.Length);
            if (_buffer is null || _buffer.Length < most) { _buffer = new byte[Math.Max(most, 64)]; }
            return new Utf8Text(_buffer.AsMemory(0, Encoding.UTF8.GetBytes(value, _buffer)));
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
        var started = Stopwatch.GetTimestamp();
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
        LogPropertiesBackfilled(options.Logger, Stopwatch.GetElapsedTime(started).TotalSeconds);
    }

    [LoggerMessage(EventId = 5, Level = LogLevel.Information, Message = "Typed the properties of every stored event into event_properties (an upgrade's backfill) in {Seconds:0.0} s")]
    private static partial void LogPropertiesBackfilled(ILogger logger, double seconds);
}
