using DuckDB.NET.Data;

namespace Tessera.Process.Tests;

/// <summary>Reads a store's DuckDB file directly, as the tests check what a server or a command left in it.</summary>
internal static class DuckDbFile
{
    /// <summary>
    /// Runs <paramref name="sql"/> on the DuckDB file at <paramref name="path"/> and returns the first column of its first
    /// row (null when none). With no server open on the file it opens it; inside a server's process it shares the
    /// server's database and its settings.
    /// </summary>
    public static async Task<object?> ScalarAsync(string path, string sql)
    {
        await using var connection = new DuckDBConnection($"Data Source={path}");
        await connection.OpenAsync();
        await using var command = connection.CreateCommand();
        command.CommandText = sql;
        return await command.ExecuteScalarAsync();
    }
}
