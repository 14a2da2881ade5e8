using System.CommandLine;
using CsvHelper;
using Tessera.Server.Exports;
using Tessera.Server.Hosting;
using Tessera.Storage;

namespace Tessera.Cli.Commands;

internal static class ExportCommand
{
    public static Command Create() => new("export", "Write data out of the store.") { CreateIdentities(), CreateSegment() };

    private static Command CreateSegment()
    {
        var store = new StoreOptions();
        var segment = new Argument<string>("SEGMENT") { Description = "The audience's id (seg_...) or its exact name" };
        var output = new Option<FileInfo>("--out") { Description = "File to write: .csv or .parquet; one row per member with its identifiers, traits and computed traits", Required = true };
        var command = new Command("segment", "Export the members of an audience with their traits.") { segment, output };
        store.AddTo(command);
        command.SetAction(async (result, cancellationToken) =>
        {
            var file = result.GetValue(output)!;
            var wanted = result.GetValue(segment)!;
            if (!file.Extension.Equals(".csv", StringComparison.OrdinalIgnoreCase) && !file.Extension.Equals(".parquet", StringComparison.OrdinalIgnoreCase))
            {
                await Console.Error.WriteLineAsync($"tessera: --out: '{file.Name}' must end in .csv or .parquet");
                return 2;
            }

            try
            {
                using var loggers = StoreOptions.ConsoleLoggers();
                await using var tesseraStore = TesseraServer.CreateStore(store.Read(result), loggers);
                await tesseraStore.OpenAsync(cancellationToken);
                var audiences = tesseraStore.Engine.Audiences;
                var audience = audiences.FirstOrDefault(a => a.Id == wanted) ?? audiences.SingleOrDefault(a => a.Name == wanted);
                if (audience is null)
                {
                    var known = audiences.Count == 0 ? "there are none" : "known: " + string.Join(", ", audiences.Select(a => $"{a.Id} ({a.Name})"));
                    await Console.Error.WriteLineAsync($"tessera: SEGMENT: no audience '{wanted}'; {known}");
                    return 1;
                }

                var table = MemberTable.Of(tesseraStore.Engine, tesseraStore.Engine.Members(audience.Id));
                await TableFile.WriteAsync(file.FullName, TableFile.FormatOf(file.FullName), table.Columns, table.Rows, cancellationToken);
                Console.WriteLine($"exported {table.Rows.Count} members of {audience.Id} ({audience.Name}) to {file.FullName}");
                return 0;
            }
            catch (Exception e) when (e is StoreException or StoreUnavailableException or ArgumentException or IOException or DuckDB.NET.Data.DuckDBException)
            {
                await Console.Error.WriteLineAsync($"tessera: {e.Message}");
                return 1;
            }
        });
        return command;
    }

    private static Command CreateIdentities()
    {
        var store = new StoreOptions();
        var output = new Option<FileInfo>("--out") { Description = "CSV file to write: profile_id,type,value for every identifier", Required = true };
        var command = new Command("identities", "Export every identifier with the profile that owns it.") { output };
        store.AddTo(command);
        command.SetAction(async (result, cancellationToken) =>
        {
            var file = result.GetValue(output)!;
            try
            {
                using var loggers = StoreOptions.ConsoleLoggers();
                await using var tesseraStore = TesseraServer.CreateStore(store.Read(result), loggers);
                await tesseraStore.OpenAsync(cancellationToken);
                var identities = tesseraStore.Engine.Identities();
                await using (var csv = CsvWriter.ToFile(file.FullName, new CsvWriterOptions(), FileOptions.None))
                {
                    csv.WriteRecord(["profile_id", "type", "value"]);
                    foreach (var (profileId, identifier) in identities) { csv.WriteRecord([profileId, identifier.Type, identifier.Value]); }
                }

                Console.WriteLine($"exported {identities.Count} identifiers of {identities.Select(i => i.ProfileId).Distinct().Count()} profiles to {file.FullName}");
                return 0;
            }
            catch (Exception e) when (e is StoreException or StoreUnavailableException or ArgumentException or IOException)
            {
                await Console.Error.WriteLineAsync($"tessera: {e.Message}");
                return 1;
            }
        });
        return command;
    }
}
