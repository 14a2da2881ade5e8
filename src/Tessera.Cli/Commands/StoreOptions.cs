using System.CommandLine;
using Microsoft.Extensions.Logging;
using Tessera.Server.Hosting;

namespace Tessera.Cli.Commands;

/// <summary>The flags that name a store, shared by every command that opens one.</summary>
internal sealed class StoreOptions
{
    public Option<string> DataDir { get; } = new("--data-dir") { Description = "Directory of the embedded store", DefaultValueFactory = _ => "./data" };
    public Option<string> Store { get; } = new Option<string>("--store") { Description = "duckdb (default) or postgres", DefaultValueFactory = _ => "duckdb" }.AcceptOnlyFromAmong("duckdb", "postgres");
    public Option<string?> Postgres { get; } = new("--postgres") { Description = "Npgsql connection string, with --store postgres" };
    public Option<string?> IdentityRules { get; } = new("--identity-rules") { Description = "JSON file with the identity rules (identifier types, limits, priorities, blocked values)" };
    public Option<string?> ProfileRules { get; } = new("--profile-rules") { Description = "JSON file with the trait merge policies (latest, first, highest, lowest, source_priority)" };
    public Option<string?> ComputedTraits { get; } = new("--computed-traits") { Description = "JSON file with a list of computed trait definitions" };

    public void AddTo(Command command)
    {
        command.Add(DataDir);
        command.Add(Store);
        command.Add(Postgres);
        command.Add(IdentityRules);
        command.Add(ProfileRules);
        command.Add(ComputedTraits);
    }

    /// <summary>
    /// Where a command's store says what it does at open (a schema upgrade's steps, which can take minutes): one line a
    /// message on standard error, so the command's output stays its own. Dispose it to flush.
    /// </summary>
    public static ILoggerFactory ConsoleLoggers() => LoggerFactory.Create(logging => logging
        .AddConsole(console => console.LogToStandardErrorThreshold = LogLevel.Trace)
        .AddSimpleConsole(console => console.SingleLine = true));

    public TesseraOptions Read(ParseResult result) => new()
    {
        DataDir = result.GetValue(DataDir)!,
        Store = result.GetValue(Store)!,
        Postgres = result.GetValue(Postgres),
        IdentityRulesFile = result.GetValue(IdentityRules),
        ProfileRulesFile = result.GetValue(ProfileRules),
        ComputedTraitsFile = result.GetValue(ComputedTraits),
    };
}
