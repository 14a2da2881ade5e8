using System.Diagnostics;
using System.Globalization;
using System.Runtime.InteropServices;
using DuckDB.NET.Data;

/// <summary>
/// What DuckDB holds in the C library's heap for a table it has read: for every column segment (one a column of a row
/// group, more where a column's data fills several blocks) a few objects of 32-336 bytes, kept while the database is
/// open. Opens a store read-only in a process of its own, reads the storage layout of its two largest tables (which
/// loads their segments' metadata) and prints the heap's bytes in use before and after, per segment and per row.
/// With row group sizes after the path, copies the two tables into fresh files with those sizes (DuckDB's
/// <c>ROW_GROUP_SIZE</c>, storage version v1.2.0) and measures each copy the same way, each in a process of its own.
/// docs/benchmarks.md, "A fast machine, and what grows with the events stored".
/// </summary>
internal static partial class Metadata
{
    private static readonly string[] Tables = ["events", "event_properties"];

    public static void Run(string[] args)
    {
        if (args.Length < 1) { throw new ArgumentException("usage: Tessera.DuckDbMemory metadata STORE.duckdb [ROW_GROUP_SIZE ...]"); }
        if (args[0] == "--measure") { Measure(args[1], args.Length > 2 ? args[2] : null); return; }
        var store = Path.GetFullPath(args[0]);
        Child(store, null);
        foreach (var size in args.Skip(1).Select(a => int.Parse(a, CultureInfo.InvariantCulture)))
        {
            var copy = Path.Combine(Path.GetTempPath(), $"tessera-row-groups-{size}-{Guid.NewGuid():N}.duckdb");
            try
            {
                using (var connection = new DuckDBConnection("Data Source=:memory:"))
                {
                    connection.Open();
                    Sql.Execute(connection, $"ATTACH '{store}' AS source (READ_ONLY); ATTACH '{copy}' AS copy (ROW_GROUP_SIZE {size}, STORAGE_VERSION 'v1.2.0')");
                    foreach (var table in Tables) { Sql.Execute(connection, $"CREATE TABLE copy.{table} AS SELECT * FROM source.{table}"); }
                    Sql.Execute(connection, "CHECKPOINT copy");
                }

                Child(copy, size.ToString(CultureInfo.InvariantCulture));
            }
            finally
            {
                File.Delete(copy);
                File.Delete(copy + ".wal");
            }
        }
    }

    private static void Child(string path, string? label)
    {
        var start = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, UseShellExecute = false };
        foreach (var a in new[] { typeof(Metadata).Assembly.Location, "metadata", "--measure", path }) { start.ArgumentList.Add(a); }
        if (label is not null) { start.ArgumentList.Add(label); }
        using var process = Process.Start(start) ?? throw new InvalidOperationException("could not start a measuring process");
        Console.Write(process.StandardOutput.ReadToEnd());
        process.WaitForExit();
    }

    private static void Measure(string path, string? rowGroupSize)
    {
        // The store's own allocator options, so that DuckDB's buffers stay out of the C library's heap as in the server.
        Tessera.Storage.DuckDb.DuckDbAllocator.UseDefaultUnlessSet();
        using var connection = new DuckDBConnection($"Data Source={path};ACCESS_MODE=READ_ONLY");
        connection.Open();
        var label = rowGroupSize is null ? $"{Path.GetFileName(path)} as stored" : $"a copy with row groups of {rowGroupSize}";
        var before = HeapInUse();
        foreach (var table in Tables)
        {
            using var command = connection.CreateCommand();
            command.CommandText = $"SELECT (SELECT count(*) FROM {table}), count(DISTINCT row_group_id), count(*), count(DISTINCT block_id) FROM pragma_storage_info('{table}')";
            using var reader = command.ExecuteReader();
            reader.Read();
            var (rows, groups, segments, blocks) = (reader.GetInt64(0), reader.GetInt64(1), reader.GetInt64(2), reader.GetInt64(3));
            var after = HeapInUse();
            var bytes = after - before;
            before = after;
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"{label}: {table}: {rows:N0} rows, {groups:N0} row groups, {segments:N0} segments in {blocks:N0} blocks; the C library's heap +{bytes / 1048576.0:F1} MB ({(double)bytes / segments:F0} B a segment, {(double)bytes / rows:F2} B a row)"));
        }
    }

    private static long HeapInUse() => (long)MallInfo2().InUse;

    [LibraryImport("libc", EntryPoint = "mallinfo2")]
    private static partial MallocInfo MallInfo2();

    [StructLayout(LayoutKind.Sequential)]
    private readonly struct MallocInfo
    {
        private readonly nuint _arena, _ordblks, _smblks, _hblks, _hblkhd, _usmblks, _fsmblks;
        public readonly nuint InUse;
        private readonly nuint _fordblks, _keepcost;
    }
}
