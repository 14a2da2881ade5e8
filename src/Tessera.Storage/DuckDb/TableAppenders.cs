using System.Runtime.ExceptionServices;
using System.Runtime.InteropServices;
using DuckDB.NET.Data;

namespace Tessera.Storage.DuckDb;

/// <summary>
/// The appenders of one transaction, one per table: opened at the table's first row and kept open for everything the
/// transaction writes, however many staged appends that is. Opening and closing an appender costs about as much as
/// appending a hundred rows (DuckDB.NET sets up a writer per column; closing moves the rows into the transaction's
/// storage), and under load the indexer stages most requests on their own (100 events), so an appender per table per
/// staged append made a commit cost about twice what its rows do (docs/benchmarks.md, "One appender per table per
/// commit"). A statement on the connection (<see cref="Connection"/>) first closes every open appender, so it sees every
/// row appended before it; <see cref="Close"/> (or disposing) before the commit.
/// </summary>
internal sealed class TableAppenders(DuckDBConnection connection) : IDisposable
{
    private readonly Dictionary<string, DuckDBAppender> _open = new(StringComparer.Ordinal);
    private readonly Dictionary<string, long> _rows = new(StringComparer.Ordinal);

    /// <summary>The connection, for a statement: the open appenders are closed first, their rows in the transaction.</summary>
    public DuckDBConnection Connection
    {
        get
        {
            Close();
            return connection;
        }
    }

    /// <summary>The open appender of <paramref name="table"/>, opened now if it is not.</summary>
    public DuckDBAppender For(string table)
    {
        if (!_open.TryGetValue(table, out var appender))
        {
            appender = connection.CreateAppender(table);
            _open.Add(table, appender);
        }

        return appender;
    }

    /// <summary>
    /// Counts <paramref name="rows"/> appended to <paramref name="table"/>. The writers of the tables a transaction can
    /// give a row group's rows (<c>events</c>, <c>event_properties</c>: ~5 an event) count theirs, so the committer knows
    /// what each table got (<see cref="Rows"/>), not only how many events.
    /// </summary>
    public void Counted(string table, long rows)
    {
        if (rows > 0) { CollectionsMarshal.GetValueRefOrAddDefault(_rows, table, out _) += rows; }
    }

    /// <summary>The rows counted (<see cref="Counted"/>) for each table since these appenders were made.</summary>
    public IReadOnlyDictionary<string, long> Rows => _rows;

    /// <summary>Closes every open appender (each one, even after one fails; the first failure is thrown).</summary>
    public void Close()
    {
        if (_open.Count == 0) { return; }
        Exception? first = null;
        foreach (var appender in _open.Values)
        {
            try
            {
                appender.Close();
            }
            catch (DuckDBException e)
            {
                first ??= e;
            }
        }

        _open.Clear();
        if (first is not null) { ExceptionDispatchInfo.Throw(first); }
    }

    public void Dispose() => Close();
}
