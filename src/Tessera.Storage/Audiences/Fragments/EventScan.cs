using System.Globalization;
using Tessera.Core.Audiences;

namespace Tessera.Storage.Audiences.Fragments;

/// <summary>
/// One pass over a definition's track events of one name, shared by every event condition on that name: the rows of
/// all their windows are read once, each property taken out once, and each condition gets its own aggregate column
/// (a count or sum with a FILTER for its window and filters), grouped by live profile. Written as a common table
/// expression (<see cref="Sql"/>) once the whole definition has been compiled.
/// </summary>
internal sealed class EventScan
{
    private readonly AudienceSqlBuilder _b;
    private readonly EventSource _source;
    private readonly List<string> _aggregates = [];

    public EventScan(AudienceSqlBuilder b, string name, string eventName, TimeWindow window)
    {
        _b = b;
        Name = name;
        _source = new EventSource(b, "ev", eventName, trackOnly: true, window, typed: true);
    }

    /// <summary>The common table expression's name: one row per live profile with at least one row read.</summary>
    public string Name { get; }

    /// <summary>
    /// Adds the condition's figure as a column and returns its name: the number of its events, or the sum of its
    /// property where it is a JSON number (0 over none).
    /// </summary>
    public string Add(EventCondition condition)
    {
        _source.Read(condition.Window, condition.Where, condition.Sum is not null ? condition.SumProperty : null);
        var rows = $"{_source.Window("ev.ts", condition.Window)} AND {_source.Filters(condition.Where)}";
        string aggregate;
        if (condition.Sum is not null)
        {
            var value = _source.Property(condition.SumProperty!);
            aggregate = $"coalesce(sum(CASE WHEN {value.Kind} = 'number' THEN {value.Number} END) FILTER (WHERE {rows}), {_b.Dialect.AsNumber("0")})";
        }
        else
        {
            aggregate = $"count(*) FILTER (WHERE {rows})";
        }

        var column = "a" + _aggregates.Count.ToString(CultureInfo.InvariantCulture);
        _aggregates.Add($"{aggregate} AS {column}");
        return column;
    }

    public string Sql() => $"{Name} AS MATERIALIZED (SELECT ev.pid, {string.Join(", ", _aggregates)} FROM {_source.Sql()} GROUP BY ev.pid)";
}
