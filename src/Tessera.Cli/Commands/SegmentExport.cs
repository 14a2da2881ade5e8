using System.Text.Json.Nodes;
using CsvHelper;
using DuckDB.NET.Data;
using Tessera.Core.Profiles;

namespace Tessera.Cli.Commands;

/// <summary>
/// The members of an audience as a table: <c>profile_id</c>, then <c>identifiers.TYPE</c> (values joined by
/// <c>|</c>), <c>traits.NAME</c> and <c>computed.NAME</c> columns, one row per member in id order. Written as CSV
/// (CsvHelper) or Parquet (an in-memory DuckDB writes it, so both stores export the same way).
/// </summary>
internal static class SegmentExport
{
    public static (List<string> Columns, List<string?[]> Rows) Table(ProfileEngine engine, IReadOnlyList<string> members)
    {
        var profiles = members.Select(id => engine.Get(id)).OfType<ProfileView>().ToList();
        var columns = new List<string> { "profile_id" };
        columns.AddRange(profiles.SelectMany(p => p.Identifiers.Select(i => i.Type)).Distinct().Order(StringComparer.Ordinal).Select(t => $"identifiers.{t}"));
        columns.AddRange(profiles.SelectMany(p => p.Traits.Keys).Distinct().Order(StringComparer.Ordinal).Select(t => $"traits.{t}"));
        columns.AddRange(profiles.SelectMany(p => p.Computed.Keys).Distinct().Order(StringComparer.Ordinal).Select(t => $"computed.{t}"));
        var index = columns.Select((c, i) => (c, i)).ToDictionary(x => x.c, x => x.i, StringComparer.Ordinal);
        var rows = new List<string?[]>(profiles.Count);
        foreach (var p in profiles)
        {
            var row = new string?[columns.Count];
            row[0] = p.Id;
            foreach (var group in p.Identifiers.GroupBy(i => i.Type)) { row[index[$"identifiers.{group.Key}"]] = string.Join('|', group.Select(i => i.Value).Order(StringComparer.Ordinal)); }
            foreach (var (name, value) in p.Traits) { row[index[$"traits.{name}"]] = Text(value.Value); }
            foreach (var (name, value) in p.Computed) { row[index[$"computed.{name}"]] = Text(value); }
            rows.Add(row);
        }

        return (columns, rows);
    }

    /// <summary>Strings as they are; numbers, booleans, objects and arrays as JSON; null as empty.</summary>
    private static string? Text(JsonNode? value) =>
        value is null ? null : value is JsonValue v && v.TryGetValue<string>(out var s) ? s : value.ToJsonString();

    public static async Task WriteAsync(FileInfo file, List<string> columns, List<string?[]> rows)
    {
        if (file.Extension.Equals(".parquet", StringComparison.OrdinalIgnoreCase))
        {
            await WriteParquetAsync(file, columns, rows);
            return;
        }

        await using var csv = CsvWriter.ToFile(file.FullName, new CsvWriterOptions(), FileOptions.None);
        csv.WriteRecord([.. columns]);
        foreach (var row in rows) { csv.WriteRecord([.. row.Select(v => v ?? "")]); }
    }

    private static async Task WriteParquetAsync(FileInfo file, List<string> columns, List<string?[]> rows)
    {
        await using var duck = new DuckDBConnection("Data Source=:memory:");
        await duck.OpenAsync();
        using (var create = duck.CreateCommand())
        {
            create.CommandText = $"CREATE TABLE members ({string.Join(", ", columns.Select(c => $"{Quote(c)} VARCHAR"))})";
            await create.ExecuteNonQueryAsync();
        }

        using (var appender = duck.CreateAppender("members"))
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
        copy.CommandText = $"COPY members TO '{file.FullName.Replace("'", "''", StringComparison.Ordinal)}' (FORMAT PARQUET)";
        await copy.ExecuteNonQueryAsync();
    }

    private static string Quote(string identifier) => $"\"{identifier.Replace("\"", "\"\"", StringComparison.Ordinal)}\"";
}
