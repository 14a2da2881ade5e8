using System.CommandLine;
using Spectre.Console;
using Tessera.Cli.Import;
using Tessera.Server.Hosting;
using Tessera.Server.Management;
using Tessera.Storage;

namespace Tessera.Cli.Commands;

internal static class ImportCommand
{
    public static Command Create() => new("import", "Load data files into the store.") { CreateEvents() };

    private static Command CreateEvents()
    {
        var store = new StoreOptions();
        var file = new Argument<FileInfo>("FILE") { Description = "JSONL of Segment messages, or CSV (with --map)" };
        var source = new Option<string>("--source") { Description = "Name of the source the events are filed under (created when missing)", DefaultValueFactory = _ => "import" };
        var map = new Option<string?>("--map") { Description = "CSV only: message path=column pairs, e.g. type=Kind,event=Name,userId=Customer,properties.revenue=Total" };
        var type = new Option<string?>("--type") { Description = "CSV only: the message type of every row when no column gives it (e.g. track)" };
        var rejected = new Option<FileInfo?>("--rejected") { Description = "Where refused rows go (default: FILE.rejected.jsonl)" };
        var command = new Command("events", "Import events (history backfill) with the same validation and dedup as the HTTP API.") { file, source, map, type, rejected };
        store.AddTo(command);
        command.SetAction(async (result, cancellationToken) =>
        {
            var input = result.GetValue(file)!;
            if (!input.Exists)
            {
                await Console.Error.WriteLineAsync($"tessera: FILE: {input.FullName} does not exist");
                return 2;
            }

            var isCsv = input.Extension.Equals(".csv", StringComparison.OrdinalIgnoreCase);
            var mapText = result.GetValue(map);
            if (isCsv && string.IsNullOrWhiteSpace(mapText))
            {
                await Console.Error.WriteLineAsync("tessera: --map: a CSV file needs a column map, e.g. --map type=Kind,event=Name,userId=Customer");
                return 2;
            }

            Dictionary<string, string> columns = [];
            if (isCsv && !TryParseMap(mapText!, out columns, out var mapError))
            {
                await Console.Error.WriteLineAsync($"tessera: --map: {mapError}");
                return 2;
            }

            var rejectedFile = result.GetValue(rejected) ?? new FileInfo(input.FullName + ".rejected.jsonl");
            try
            {
                await using var tesseraStore = TesseraServer.CreateStore(store.Read(result));
                await tesseraStore.OpenAsync(cancellationToken);
                var sourceName = result.GetValue(source)!;
                var sources = await tesseraStore.ListSourcesAsync(cancellationToken);
                var target = sources.FirstOrDefault(s => s.Name == sourceName && !s.IsRevoked)
                    ?? await tesseraStore.CreateSourceAsync(sourceName, "default", SourcesApi.NewWriteKey(), cancellationToken);

                EventImporter importer;
                await using (var rejectedOut = new StreamWriter(rejectedFile.FullName))
                await using (var stream = input.OpenRead())
                {
                    importer = new EventImporter(tesseraStore, target.Id, rejectedOut);
                    await WithProgressAsync(input, stream.Length, progress => isCsv
                        ? importer.ImportCsvAsync(stream, columns, result.GetValue(type), progress, cancellationToken)
                        : importer.ImportJsonLinesAsync(stream, progress, cancellationToken));
                }

                if (importer.Rejected == 0) { rejectedFile.Delete(); }
                Console.WriteLine($"imported {importer.Imported}, rejected {importer.Rejected}" +
                    (importer.Duplicates > 0 ? $", duplicates skipped {importer.Duplicates}" : "") +
                    (importer.Rejected > 0 ? $"; rejected rows and reasons: {rejectedFile.FullName}" : ""));
                return importer.Rejected > 0 ? 1 : 0;
            }
            catch (Exception e) when (e is StoreException or StoreUnavailableException or ArgumentException)
            {
                await Console.Error.WriteLineAsync($"tessera: {e.Message}");
                return 1;
            }
        });
        return command;
    }

    private static bool TryParseMap(string text, out Dictionary<string, string> map, out string? error)
    {
        map = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var pair in text.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            var parts = pair.Split('=', 2, StringSplitOptions.TrimEntries);
            if (parts.Length != 2 || parts[0].Length == 0 || parts[1].Length == 0)
            {
                error = $"'{pair}' is not field=column";
                return false;
            }

            map[parts[0]] = parts[1];
        }

        error = null;
        return true;
    }

    /// <summary>A progress bar over the file's bytes on a terminal; nothing extra when the output is redirected.</summary>
    private static async Task WithProgressAsync(FileInfo input, long total, Func<Action<long>, Task> work)
    {
        if (!AnsiConsole.Profile.Capabilities.Interactive || Console.IsOutputRedirected)
        {
            await work(_ => { });
            return;
        }

        await AnsiConsole.Progress()
            .Columns(new TaskDescriptionColumn(), new ProgressBarColumn(), new PercentageColumn(), new TransferSpeedColumn(), new RemainingTimeColumn())
            .StartAsync(async context =>
            {
                var task = context.AddTask($"importing {input.Name}", maxValue: Math.Max(1, total));
                await work(done => task.Value = done);
                task.Value = task.MaxValue;
            });
    }
}
