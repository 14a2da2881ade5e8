using System.Text.Json;
using System.Text.Json.Nodes;
using Tessera.Core.Collection;
using Tessera.Core.Conditions;

namespace Tessera.Core.Profiles;

/// <summary>
/// The computed traits of every live profile, updated as events arrive. A windowed trait keeps the matching events
/// inside its window, so its value changes as time passes with no new event; an unwindowed one keeps running
/// aggregates. Not thread-safe: <see cref="ProfileEngine"/> serialises access.
/// </summary>
public sealed class ComputedTraits
{
    private readonly List<ComputedTraitDefinition> _definitions = [];
    private readonly Dictionary<(string Profile, string Trait), Accumulator> _state = new();

    public IReadOnlyList<ComputedTraitDefinition> Definitions => _definitions;

    public void Define(ComputedTraitDefinition definition)
    {
        Remove(definition.Name);
        _definitions.Add(definition);
    }

    public bool Remove(string name)
    {
        var removed = _definitions.RemoveAll(d => d.Name == name) > 0;
        if (removed)
        {
            foreach (var key in _state.Keys.Where(k => k.Trait == name).ToList()) { _state.Remove(key); }
        }

        return removed;
    }

    /// <summary>Offers one event of <paramref name="profileId"/> to every definition (or just <paramref name="only"/>).</summary>
    public void Apply(string profileId, CollectedEvent e, JsonElement message, ComputedTraitDefinition? only = null)
    {
        if (e.Event is null) { return; }
        foreach (var definition in only is null ? _definitions : [only])
        {
            if (definition.Event != e.Event || !(definition.Where ?? []).All(f => f.Matches(message))) { continue; }
            JsonNode? value = null;
            if (definition.Property is { } property)
            {
                if (!PropertyFilter.TryRead(message, property, out var element)) { continue; }
                value = TraitJson.From(element);
            }

            var key = (profileId, definition.Name);
            if (!_state.TryGetValue(key, out var accumulator)) { _state[key] = accumulator = new Accumulator(definition); }
            accumulator.Add(e.Timestamp, value);
        }
    }

    public void Merge(string survivor, string merged)
    {
        foreach (var definition in _definitions)
        {
            if (!_state.Remove((merged, definition.Name), out var from)) { continue; }
            if (_state.TryGetValue((survivor, definition.Name), out var into)) { into.Absorb(from); }
            else { _state[(survivor, definition.Name)] = from; }
        }
    }

    /// <summary>Every computed trait of the profile as of <paramref name="now"/> (null where it has no data).</summary>
    public Dictionary<string, JsonNode?> ValuesOf(string profileId, DateTimeOffset now)
    {
        var values = new Dictionary<string, JsonNode?>(StringComparer.Ordinal);
        foreach (var definition in _definitions)
        {
            values[definition.Name] = _state.TryGetValue((profileId, definition.Name), out var a) ? a.Value(now) : Empty(definition);
        }

        return values;
    }

    /// <summary>One computed trait of the profile as of <paramref name="now"/> (null where it has no data).</summary>
    public JsonNode? ValueOf(string profileId, string name, DateTimeOffset now)
    {
        var definition = _definitions.Find(d => d.Name == name);
        if (definition is null) { return null; }
        return _state.TryGetValue((profileId, name), out var a) ? a.Value(now) : Empty(definition);
    }

    /// <summary>
    /// The first instant after <paramref name="now"/> at which a windowed trait of the profile changes with no new
    /// event (an event leaves its window, or a future-dated one enters it); null when none will.
    /// </summary>
    public DateTimeOffset? NextChange(string profileId, string name, DateTimeOffset now) =>
        _state.TryGetValue((profileId, name), out var a) ? a.NextChange(now) : null;

    private static JsonValue? Empty(ComputedTraitDefinition d) => d.Function is ComputedFunction.Count or ComputedFunction.DistinctCount ? JsonValue.Create(0) : null;

    private sealed class Accumulator(ComputedTraitDefinition definition)
    {
        // Windowed: the matching events themselves. Unwindowed: running figures.
        private readonly List<(DateTimeOffset At, JsonNode? Value)> _entries = [];
        private readonly Dictionary<string, (int Count, JsonNode? Value)> _frequency = new(StringComparer.Ordinal);
        private long _count;
        private decimal _sum;
        private long _numbers;
        private decimal? _min;
        private decimal? _max;
        private (DateTimeOffset At, JsonNode? Value)? _first;
        private (DateTimeOffset At, JsonNode? Value)? _last;

        public void Add(DateTimeOffset at, JsonNode? value)
        {
            if (definition.Window is not null)
            {
                _entries.Add((at, value));
                return;
            }

            _count++;
            if (value is JsonValue v && v.TryGetValue<decimal>(out var n))
            {
                _sum += n;
                _numbers++;
                _min = _min is null ? n : Math.Min(_min.Value, n);
                _max = _max is null ? n : Math.Max(_max.Value, n);
            }

            if (_first is null || at < _first.Value.At) { _first = (at, value); }
            if (_last is null || at >= _last.Value.At) { _last = (at, value); }
            if (definition.Function is ComputedFunction.MostFrequent or ComputedFunction.DistinctCount && value is not null)
            {
                var key = value.ToJsonString();
                _frequency[key] = (_frequency.TryGetValue(key, out var f) ? f.Count + 1 : 1, value);
            }
        }

        public void Absorb(Accumulator other)
        {
            if (definition.Window is not null)
            {
                _entries.AddRange(other._entries);
                return;
            }

            _count += other._count;
            _sum += other._sum;
            _numbers += other._numbers;
            _min = Pick(_min, other._min, Math.Min);
            _max = Pick(_max, other._max, Math.Max);
            if (other._first is { } f && (_first is null || f.At < _first.Value.At)) { _first = f; }
            if (other._last is { } l && (_last is null || l.At >= _last.Value.At)) { _last = l; }
            foreach (var (key, (count, value)) in other._frequency)
            {
                _frequency[key] = (_frequency.TryGetValue(key, out var mine) ? mine.Count + count : count, value);
            }
        }

        public DateTimeOffset? NextChange(DateTimeOffset now)
        {
            if (definition.Window is not { } window) { return null; }
            DateTimeOffset? next = null;
            foreach (var (at, _) in _entries)
            {
                var candidate = at > now ? at : at + window;
                if (candidate > now && (next is null || candidate < next)) { next = candidate; }
            }

            return next;
        }

        public JsonNode? Value(DateTimeOffset now)
        {
            if (definition.Window is { } window)
            {
                _entries.RemoveAll(e => e.At < now - window);
                var fresh = new Accumulator(definition with { Within = null });
                foreach (var (at, value) in _entries.Where(e => e.At <= now)) { fresh.Add(at, value); }
                return fresh.Value(now);
            }

            if (_count == 0) { return Empty(definition); }
            return definition.Function switch
            {
                ComputedFunction.Count => JsonValue.Create(_count),
                ComputedFunction.Sum => JsonValue.Create(_sum),
                ComputedFunction.Average => _numbers == 0 ? null : JsonValue.Create(Math.Round(_sum / _numbers, 6)),
                ComputedFunction.Min => _min is { } min ? JsonValue.Create(min) : null,
                ComputedFunction.Max => _max is { } max ? JsonValue.Create(max) : null,
                ComputedFunction.First => ValueOrTime(_first!.Value),
                ComputedFunction.Last => ValueOrTime(_last!.Value),
                ComputedFunction.MostFrequent => _frequency.Count == 0 ? null : _frequency.Values.OrderByDescending(f => f.Count).First().Value?.DeepClone(),
                ComputedFunction.DistinctCount => JsonValue.Create(_frequency.Count),
                _ => null,
            };
        }

        private JsonNode? ValueOrTime((DateTimeOffset At, JsonNode? Value) entry) =>
            definition.Property is null ? JsonValue.Create(entry.At.UtcDateTime.ToString("yyyy-MM-dd'T'HH:mm:ss.fff'Z'", System.Globalization.CultureInfo.InvariantCulture)) : entry.Value?.DeepClone();

        private static decimal? Pick(decimal? a, decimal? b, Func<decimal, decimal, decimal> choose) => a is null ? b : b is null ? a : choose(a.Value, b.Value);
    }
}
