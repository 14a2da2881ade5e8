using System.Diagnostics;
using Microsoft.Extensions.Logging;

namespace Tessera.Storage;

/// <summary>
/// The schema steps a store opened at a version still has to apply, and what it says about them, the same for both
/// stores: a new store's creation in one line; an upgrade announced before its first step (a step that copies a table
/// takes as long as the table is big, and the server listens only after the last step), then each step with its
/// duration, then the schema reached. Each store applies a step its own way (<see cref="ApplyEachAsync"/>).
/// </summary>
internal sealed partial class SchemaUpgrade
{
    private readonly ILogger _logger;
    private readonly string _store;
    private readonly int _from;
    private readonly long _started = Stopwatch.GetTimestamp();

    private SchemaUpgrade(ILogger logger, string store, int from, IReadOnlyList<(int Version, string Description, string Sql)> steps)
    {
        (_logger, _store, _from, Steps) = (logger, store, from, steps);
    }

    /// <summary>The steps to apply, in order.</summary>
    public IReadOnlyList<(int Version, string Description, string Sql)> Steps { get; }

    private bool IsUpgrade => _from > 0 && Steps.Count > 0;

    /// <summary>
    /// The steps of <paramref name="all"/> after <paramref name="current"/> (up to <paramref name="upTo"/>: tests build
    /// an older release's store), announced when they upgrade an existing store named <paramref name="store"/>.
    /// </summary>
    public static SchemaUpgrade Start(IReadOnlyList<(int Version, string Description, string Sql)> all, int current, int? upTo, ILogger logger, string store)
    {
        var upgrade = new SchemaUpgrade(logger, store, current, [.. all.Where(s => s.Version > current && s.Version <= (upTo ?? int.MaxValue))]);
        if (upgrade.IsUpgrade) { LogUpgrading(logger, store, current, upgrade.Steps[^1].Version, upgrade.Steps.Count); }
        return upgrade;
    }

    /// <summary>Applies each step with <paramref name="apply"/>, in order, logging each step of an upgrade with its duration.</summary>
    public async Task ApplyEachAsync(Func<(int Version, string Description, string Sql), Task> apply)
    {
        foreach (var step in Steps)
        {
            var started = Stopwatch.GetTimestamp();
            await apply(step);
            if (IsUpgrade) { LogStepApplied(_logger, step.Version, step.Description, Stopwatch.GetElapsedTime(started).TotalSeconds); }
        }
    }

    /// <summary>Logs the schema reached (nothing when no step ran); call it once the steps are committed.</summary>
    public void Done()
    {
        if (Steps.Count == 0) { return; }
        if (IsUpgrade) { LogUpgraded(_logger, _store, Steps[^1].Version, Stopwatch.GetElapsedTime(_started).TotalSeconds); }
        else { LogCreated(_logger, _store, Steps[^1].Version); }
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
