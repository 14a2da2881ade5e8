using DuckDB.NET.Data;
using Tessera.Storage.DuckDb;
using Tessera.Testing;

namespace Tessera.Storage.Tests;

/// <summary>
/// <see cref="WaitingStatement"/>: the committer's <c>COMMIT</c> and <c>CHECKPOINT</c> through DuckDB's pending C API, on a
/// DuckDB.NET connection, with DuckDB's errors carried out as they are.
/// </summary>
public sealed class WaitingStatementTests
{
    private readonly string _path = Path.Combine(TempDirectory.Create("waiting-statement"), "tessera.duckdb");

    [Fact]
    public async Task a_commit_run_through_it_ends_the_transaction_and_its_rows_are_seen_by_other_connections()
    {
        await using var writer = new DuckDBConnection($"Data Source={_path}");
        await writer.OpenAsync();
        await ExecuteAsync(writer, "SET threads = 2; CREATE TABLE t (n INTEGER)");
        await ExecuteAsync(writer, "BEGIN TRANSACTION; INSERT INTO t SELECT range FROM range(100000)");

        await using var reader = new DuckDBConnection($"Data Source={_path}");
        await reader.OpenAsync();
        Assert.Equal(0L, await CountAsync(reader));

        WaitingStatement.Run(writer, "COMMIT");
        Assert.Equal(100_000L, await CountAsync(reader));
        // The transaction is over: another COMMIT has nothing to end.
        var error = Assert.Throws<DuckDbStatementException>(() => WaitingStatement.Run(writer, "COMMIT"));
        Assert.Contains("no transaction is active", error.Message, StringComparison.OrdinalIgnoreCase);
    }

    [Fact]
    public async Task a_checkpoint_run_through_it_folds_the_log_into_the_file()
    {
        await using var writer = new DuckDBConnection($"Data Source={_path}");
        await writer.OpenAsync();
        await ExecuteAsync(writer, "CREATE TABLE t (n INTEGER); INSERT INTO t SELECT range FROM range(100000)");
        Assert.True(new FileInfo(_path + ".wal").Length > 0, "nothing in the log: the test proves nothing");

        WaitingStatement.Run(writer, "CHECKPOINT");
        Assert.Equal(0, new FileInfo(_path + ".wal") is { Exists: true } wal ? wal.Length : 0);
    }

    [Fact]
    public async Task statements_that_do_not_prepare_or_fail_while_running_throw_duckdbs_message()
    {
        await using var writer = new DuckDBConnection($"Data Source={_path}");
        await writer.OpenAsync();
        await ExecuteAsync(writer, "CREATE TABLE t (n INTEGER PRIMARY KEY); INSERT INTO t VALUES (1)");

        var syntax = Assert.Throws<DuckDbStatementException>(() => WaitingStatement.Run(writer, "COMMIT THE ROWS"));
        Assert.Contains("syntax error", syntax.Message, StringComparison.OrdinalIgnoreCase);
        var constraint = Assert.Throws<DuckDbStatementException>(() => WaitingStatement.Run(writer, "INSERT INTO t VALUES (1)"));
        Assert.Contains("duplicate key", constraint.Message, StringComparison.OrdinalIgnoreCase);
        // The connection is still usable.
        WaitingStatement.Run(writer, "INSERT INTO t VALUES (2)");
        Assert.Equal(2L, await CountAsync(writer));
    }

    private static async Task ExecuteAsync(DuckDBConnection connection, string sql)
    {
        await using var command = connection.CreateCommand();
        command.CommandText = sql;
        await command.ExecuteNonQueryAsync();
    }

    private static async Task<long> CountAsync(DuckDBConnection connection)
    {
        await using var command = connection.CreateCommand();
        command.CommandText = "SELECT count(*) FROM t";
        return Convert.ToInt64(await command.ExecuteScalarAsync(), System.Globalization.CultureInfo.InvariantCulture);
    }
}
