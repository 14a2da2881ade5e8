using System.CommandLine;
using CsvHelper;
using Tessera.Server.Hosting;
using Tessera.Storage;

namespace Tessera.Cli.Commands;

internal static class ExportCommand
{
    public static Command Create() => new("export", "Write data out of the store.") { CreateIdentities() };

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
                await using var tesseraStore = TesseraServer.CreateStore(store.Read(result));
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
