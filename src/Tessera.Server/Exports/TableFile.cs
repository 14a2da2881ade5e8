using CsvHelper;
using DuckDB.NET.Data;

namespace Tessera.Server.Exports;

/// <summary>
/// Writes a table as CSV (CsvHelper; a header row, RFC 4180 quoting, null as an empty field) or Parquet (every
/// column text; an in-memory DuckDB writes it, so both stores export the same way). Atomically: the table goes to a
/// hidden temporary file beside the target (<c>.NAME.tmp-…</c>), which is synced to disk and then renamed over the
/// target, so a reader sees the whole previous file or the whole new one, never part of one.
/// </summary>
public static class TableFile
{
    /// <summary>Writes <paramref name="columns"/> and <paramref name="rows"/> to <paramref name="path"/> as <paramref name="format"/> (<c>csv</c> or <c>parquet</c>); returns the file's size in bytes.</summary>
    public static async Task<long> WriteAsync(string path, string format, IReadOnlyList<string> columns, IEnumerable<string?[]> rows, CancellationToken cancellationToken = default)
    {
        var full = Path.GetFullPath(path);
        var temporary = Path.Combine(Path.GetDirectoryName(full)!, $".{Path.GetFileName(full)}.tmp-{Guid.NewGuid():N}");
        try
        {
            if (format == "parquet")
            {
                await WriteParquetAsync(temporary, columns, rows, cancellationToken);
            }
            else
            {
                await WriteCsvAsync(temporary, columns, rows, cancellationToken);
            }

            // The data must be on disk before the name points at it, or a crash could leave a complete name over a short file.
            await using (var sync = new FileStream(temporary, FileMode.Open, FileAccess.ReadWrite, FileShare.None))
            {
                sync.Flush(flushToDisk: true);
            }

            var bytes = new FileInfo(temporary).Length;
            File.Move(temporary, full, overwrite: true);
            return bytes;
        }
        catch
        {
            TryDelete(temporary);
            throw;
        }
    }

    /// <summary>The format a file name asks for: <c>parquet</c> for <c>.parquet</c>, otherwise <c>csv</c>.</summary>
    public static string FormatOf(string path) => Path.GetExtension(path).Equals(".parquet", StringComparison.OrdinalIgnoreCase) ? "parquet" : "csv";

    private static async Task WriteCsvAsync(string path, IReadOnlyList<string> columns, IEnumerable<string?[]> rows, CancellationToken cancellationToken)
    {
        await using var csv = CsvWriter.ToFile(path, new CsvWriterOptions(), FileOptions.None);
        csv.WriteRecord([.. columns]);
        foreach (var row in rows)
        {
            cancellationToken.ThrowIfCancellationRequested();
            csv.WriteRecord([.. row.Select(v => v ?? "")]);
        }
    }

    private static async Task WriteParquetAsync(string path, IReadOnlyList<string> columns, IEnumerable<string?[]> rows, CancellationToken cancellationToken)
    {
        await using var duck = new DuckDBConnection("Data Source=:memory:");
        await duck.OpenAsync(cancellationToken);
        using (var create = duck.CreateCommand())
        {
            create.CommandText = $"CREATE TABLE export ({string.Join(", ", columns.Select(c => $"{Quote(c)} VARCHAR"))})";
            await create.ExecuteNonQueryAsync(cancellationToken);
        }

        using (var appender = duck.CreateAppender("export"))
        {
            foreach (var row in rows)
            {
                var r = appender.CreateRow();
                foreach (var value in row) { r.AppendValue(value); }
                r.EndRow();
            }
        }

        using var copy = duck.CreateCommand();
        // COPY takes no parameter for its target; the path is a literal with quotes doubled.
        copy.CommandText = $"COPY export TO '{path.Replace("'", "''", StringComparison.Ordinal)}' (FORMAT PARQUET)";
        await copy.ExecuteNonQueryAsync(cancellationToken);
    }

    private static string Quote(string identifier) => $"\"{identifier.Replace("\"", "\"\"", StringComparison.Ordinal)}\"";

    private static void TryDelete(string path)
    {
        try
        {
            File.Delete(path);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            // Leaving a hidden temporary file behind is better than hiding the error that got us here.
        }
    }
}
