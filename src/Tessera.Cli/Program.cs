using System.CommandLine;
using Tessera.Cli.Commands;
using Tessera.Storage.DuckDb;

// Before anything loads DuckDB's library, whose allocator reads its options once, at load (DuckDbAllocator).
DuckDbAllocator.UseDefaultUnlessSet();

var root = new RootCommand("Tessera: an open-source customer data platform.")
{
    ServeCommand.Create(),
    ImportCommand.Create(),
    ExportCommand.Create(),
};
// System.CommandLine ends the process (exit 143) two seconds after SIGTERM by default. `serve`'s host handles the
// signal itself and may need longer to drain the journal into the store (its own limit is 30 s), so allow that.
return await root.Parse(args).InvokeAsync(new InvocationConfiguration { ProcessTerminationTimeout = TimeSpan.FromSeconds(40) });
