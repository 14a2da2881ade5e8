using System.CommandLine;
using Tessera.Cli.Commands;

var root = new RootCommand("Tessera: an open-source customer data platform.")
{
    ServeCommand.Create(),
    ImportCommand.Create(),
    ExportCommand.Create(),
};
return await root.Parse(args).InvokeAsync();
