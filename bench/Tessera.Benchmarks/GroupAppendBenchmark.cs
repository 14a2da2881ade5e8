using BenchmarkDotNet.Attributes;
using Tessera.Core.Collection;

namespace Tessera.Benchmarks;

/// <summary>
/// What the append benchmarks of both stores write: a group of 5,000 of the load generator's events (the size of a
/// busy group commit), with messageIds new for every iteration, or a store's dedup would (rightly) drop the rows as resent.
/// </summary>
public abstract class GroupAppendBenchmark
{
    protected const int Group = 5_000;
    private List<CollectedEvent> _template = [];
    private int _round;

    /// <summary>This iteration's events.</summary>
    protected List<CollectedEvent> Events { get; private set; } = [];

    /// <summary>Makes the group once, in the benchmark's global setup.</summary>
    protected void MakeGroup() => _template = Rows.Events(Group, "warm");

    [IterationSetup]
    public void FreshIds()
    {
        var round = ++_round;
        Events = _template.Select((e, i) => e with { MessageId = $"r{round}-{i}" }).ToList();
    }
}
