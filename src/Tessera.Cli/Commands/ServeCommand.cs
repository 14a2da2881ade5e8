using System.CommandLine;
using Tessera.Server.Hosting;

namespace Tessera.Cli.Commands;

internal static class ServeCommand
{
    public static Command Create()
    {
        var store = new StoreOptions();
        var urls = new Option<string>("--urls") { Description = "Where to listen", DefaultValueFactory = _ => "http://127.0.0.1:8080" };
        var demo = new Option<bool>("--demo") { Description = "Seed a realistic demo data set when the store is empty" };
        var command = new Command("serve", "Run the Tessera server.") { urls, demo };
        store.AddTo(command);
        command.SetAction(async (result, cancellationToken) =>
        {
            var options = store.Read(result);
            options.Urls = result.GetValue(urls)!;
            options.Demo = result.GetValue(demo);
            try
            {
                await using var app = TesseraServer.Build(options);
                await app.RunAsync();
                return 0;
            }
            catch (Exception e) when (e is Storage.StoreException or Storage.StoreUnavailableException or ArgumentException)
            {
                await Console.Error.WriteLineAsync($"tessera: {e.Message}");
                return 1;
            }
        });
        return command;
    }
}
