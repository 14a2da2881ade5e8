using Microsoft.Extensions.Logging;

namespace Tessera.Storage;

/// <summary>
/// What a store says about its schema as it opens, the same for both stores: a new store's creation in one line; an
/// upgrade announced first (a step that copies a table takes as long as the table is big, and the server listens only
/// after the last step), then each step with its duration, then the whole.
/// </summary>
internal static partial class SchemaLog
{
    /// <summary>Logs <paramref name="from"/> → the last of <paramref name="steps"/> as starting, when it is an upgrade.</summary>
    public static void Starting(ILogger logger, string store, int from, IReadOnlyList<(int Version, string Description, string Sql)> steps)
    {
        if (from > 0 && steps.Count > 0) { LogUpgrading(logger, store, from, steps[^1].Version, steps.Count); }
    }

    /// <summary>Logs a step applied in <paramref name="seconds"/>, when it is part of an upgrade.</summary>
    public static void StepApplied(ILogger logger, int from, (int Version, string Description, string Sql) step, double seconds)
    {
        if (from > 0) { LogStepApplied(logger, step.Version, step.Description, seconds); }
    }

    /// <summary>Logs the schema the store is at after <paramref name="steps"/> ran (nothing when none did).</summary>
    public static void Done(ILogger logger, string store, int from, IReadOnlyList<(int Version, string Description, string Sql)> steps, double seconds)
    {
        if (steps.Count == 0) { return; }
        if (from > 0) { LogUpgraded(logger, store, steps[^1].Version, seconds); }
        else { LogCreated(logger, store, steps[^1].Version); }
    }

    [LoggerMessage(EventId = 1, Level = LogLevel.Warning, Message = "Upgrading the store {Store} from schema {From} to {To} ({Steps} steps); steps that copy a table take time in proportion to its rows, and the server starts listening after the last one")]
    private static partial void LogUpgrading(ILogger logger, string store, int from, int to, int steps);

    [LoggerMessage(EventId = 2, Level = LogLevel.Information, Message = "Schema step {Version} ({Description}) applied in {Seconds:0.0} s")]
    private static partial void LogStepApplied(ILogger logger, int version, string description, double seconds);

    [LoggerMessage(EventId = 3, Level = LogLevel.Information, Message = "The store {Store} is at schema {Version}, upgraded in {Seconds:0.0} s")]
    private static partial void LogUpgraded(ILogger logger, string store, int version, double seconds);

    [LoggerMessage(EventId = 4, Level = LogLevel.Information, Message = "Created the store {Store} at schema {Version}")]
    private static partial void LogCreated(ILogger logger, string store, int version);
}
