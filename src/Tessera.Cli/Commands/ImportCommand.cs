using System.CommandLine;
using Spectre.Console;
using Tessera.Cli.Import;
using Tessera.Server.Hosting;
using Tessera.Server.Management;
using Tessera.Storage;

namespace Tessera.Cli.Commands;

internal static class ImportCommand
{
    public static Command Create() => new("import", "Load data files into the store.") { CreateEvents(), CreateProfiles() };

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
            var isCsv = input.Extension.Equals(".csv", StringComparison.OrdinalIgnoreCase);
            var mapText = result.GetValue(map);
            if (isCsv && string.IsNullOrWhiteSpace(mapText)) { return Fail("--map: a CSV file needs a column map, e.g. --map type=Kind,event=Name,userId=Customer"); }
            Dictionary<string, string> columns = [];
            if (isCsv && !TryParseMap(mapText!, out columns, out var mapError)) { return Fail($"--map: {mapError}"); }

            return await RunAsync(store.Read(result), input, result.GetValue(source)!, result.GetValue(rejected), async (tesseraStore, sourceId, rejectedOut, stream, progress) =>
            {
                var importer = new EventImporter(tesseraStore, sourceId, rejectedOut);
                await (isCsv
                    ? importer.ImportCsvAsync(stream, columns, result.GetValue(type), progress, cancellationToken)
                    : importer.ImportJsonLinesAsync(stream, progress, cancellationToken));
                return (importer.Imported, importer.Rejected, importer.Duplicates);
            }, cancellationToken);
        });
        return command;
    }

    private static Command CreateProfiles()
    {
        var store = new StoreOptions();
        var file = new Argument<FileInfo>("FILE") { Description = "CSV of customer records (a CRM or point-of-sale export) with a header row" };
        var source = new Option<string>("--source") { Description = "Name of the source the records come from, e.g. crm (created when missing)", Required = true };
        var map = new Option<string>("--map")
        {
            Description = "field=column pairs: identifier types (email, phone, user_id, or configured custom types) become identifiers, other fields traits; timestamp=COLUMN dates the record",
            Required = true,
        };
        var rejected = new Option<FileInfo?>("--rejected") { Description = "Where refused rows go (default: FILE.rejected.jsonl)" };
        var command = new Command("profiles", "Import customer records: each row joins the identity graph and sets its profile's traits.") { file, source, map, rejected };
        store.AddTo(command);
        command.SetAction(async (result, cancellationToken) =>
        {
            if (!TryParseMap(result.GetValue(map)!, out var columns, out var mapError)) { return Fail($"--map: {mapError}"); }
            var sourceName = result.GetValue(source)!;
            return await RunAsync(store.Read(result), result.GetValue(file)!, sourceName, result.GetValue(rejected), async (tesseraStore, sourceId, rejectedOut, stream, progress) =>
            {
                var importer = new ProfileImporter(tesseraStore, sourceId, sourceName, rejectedOut);
                await importer.ImportCsvAsync(stream, columns, progress, cancellationToken);
                return (importer.Imported, importer.Rejected, importer.Duplicates);
            }, cancellationToken);
        });
        return command;
    }

    private delegate Task<(long Imported, long Rejected, long Duplicates)> Importer(ITesseraStore store, string sourceId, TextWriter rejectedOut, Stream input, Action<long> progress);

    /// <summary>What every import shares: open the store, find or create the source, stream the file with a progress bar, write the summary.</summary>
    private static async Task<int> RunAsync(TesseraOptions options, FileInfo input, string sourceName, FileInfo? rejected, Importer import, CancellationToken cancellationToken)
    {
        if (!input.Exists) { return Fail($"FILE: {input.FullName} does not exist", 2); }
        var rejectedFile = rejected ?? new FileInfo(input.FullName + ".rejected.jsonl");
        try
        {
            using var loggers = StoreOptions.ConsoleLoggers();
            await using var store = TesseraServer.CreateStore(options, loggers);
            await store.OpenAsync(cancellationToken);
            var target = (await store.ListSourcesAsync(cancellationToken)).FirstOrDefault(s => s.Name == sourceName && !s.IsRevoked)
                ?? await store.CreateSourceAsync(sourceName, "default", SourcesApi.NewWriteKey(), cancellationToken);

            (long Imported, long Rejected, long Duplicates) counts;
            await using (var rejectedOut = new StreamWriter(rejectedFile.FullName))
            await using (var stream = input.OpenRead())
            {
                counts = await WithProgressAsync(input, stream.Length, progress => import(store, target.Id, rejectedOut, stream, progress));
            }

            if (counts.Rejected == 0) { rejectedFile.Delete(); }
            Console.WriteLine($"imported {counts.Imported}, rejected {counts.Rejected}" +
                (counts.Duplicates > 0 ? $", duplicates skipped {counts.Duplicates}" : "") +
                (counts.Rejected > 0 ? $"; rejected rows and reasons: {rejectedFile.FullName}" : ""));
            return counts.Rejected > 0 ? 1 : 0;
        }
        catch (ArgumentException e)
        {
            return Fail(e.Message);
        }
        catch (Exception e) when (e is StoreException or StoreUnavailableException)
        {
            return Fail(e.Message, 1);
        }
    }

    /// <summary>Prints the error; exit code 2 for bad arguments, 1 for a failure while working.</summary>
    private static int Fail(string message, int exitCode = 2)
    {
        Console.Error.WriteLine($"tessera: {message}");
        return exitCode;
    }

    internal static bool TryParseMap(string text, out Dictionary<string, string> map, out string? error)
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

        error = map.Count == 0 ? "no field=column pairs given" : null;
        return error is null;
    }

    /// <summary>A progress bar over the file's bytes on a terminal; nothing extra when the output is redirected.</summary>
    private static async Task<T> WithProgressAsync<T>(FileInfo input, long total, Func<Action<long>, Task<T>> work)
    {
        if (!AnsiConsole.Profile.Capabilities.Interactive || Console.IsOutputRedirected) { return await work(_ => { }); }

        return await AnsiConsole.Progress()
            .Columns(new TaskDescriptionColumn(), new ProgressBarColumn(), new PercentageColumn(), new TransferSpeedColumn(), new RemainingTimeColumn())
            .StartAsync(async context =>
            {
                var task = context.AddTask($"importing {input.Name}", maxValue: Math.Max(1, total));
                var outcome = await work(done => task.Value = done);
                task.Value = task.MaxValue;
                return outcome;
            });
    }
}
