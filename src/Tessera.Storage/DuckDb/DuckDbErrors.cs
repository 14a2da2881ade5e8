using System.Data.Common;

namespace Tessera.Storage.DuckDb;

/// <summary>The one place where DuckDB's errors become messages an operator can act on.</summary>
internal static class DuckDbErrors
{
    public static Exception Translate(DbException error, string? sql, string path)
    {
        var text = error.Message;
        if (text.Contains("Could not set lock", StringComparison.OrdinalIgnoreCase) || text.Contains("Conflicting lock", StringComparison.OrdinalIgnoreCase))
        {
            return new StoreException(
                $"The data file {path} is in use by another Tessera process (DuckDB allows one process per file). " +
                "Stop that process, or send the data to it over HTTP, or point --data-dir elsewhere.", error)
            { Sql = sql };
        }

        if (text.Contains("No space left", StringComparison.OrdinalIgnoreCase))
        {
            return new StoreUnavailableException($"The disk holding {path} is full; free space and retry.", error);
        }

        if (text.Contains("Permission denied", StringComparison.OrdinalIgnoreCase))
        {
            return new StoreException($"Tessera may not read or write {path}: check the directory's permissions.", error) { Sql = sql };
        }

        return new StoreException($"The embedded store failed{(sql is null ? "" : $" during '{Shorten(sql)}'")}: {text}", error) { Sql = sql };
    }

    private static string Shorten(string sql)
    {
        var line = sql.Trim().Split('\n')[0];
        return line.Length <= 60 ? line : line[..60] + "…";
    }
}
