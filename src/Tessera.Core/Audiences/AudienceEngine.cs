using System.Text.Json;
using Tessera.Core.Collection;

namespace Tessera.Core.Audiences;

/// <summary>
/// Real-time audience membership: the audiences, who is in each, and the few facts about each profile that the
/// audiences read (the matching events of each event selector, the first event of names sequences ask about).
/// Each message re-evaluates only the audiences it can change for its profile; a schedule of the next instant a
/// time window changes each profile's memberships lets people leave "in the last 30 days" audiences with no new
/// event. Not thread-safe: <see cref="Profiles.ProfileEngine"/> owns it and serialises access.
/// </summary>
public sealed class AudienceEngine
{
    private static readonly TimeSpan Tick = TimeSpan.FromMilliseconds(1);

    private readonly Dictionary<string, Audience> _audiences = new(StringComparer.Ordinal);
    private readonly Dictionary<string, AudienceDependencies> _dependencies = new(StringComparer.Ordinal);
    private readonly Dictionary<string, HashSet<string>> _members = new(StringComparer.Ordinal);
    private readonly Dictionary<string, HashSet<string>> _memberOf = new(StringComparer.Ordinal);
    private readonly Dictionary<(string Profile, string Selector), List<EventFact>> _facts = new();
    private readonly Dictionary<(string Profile, string Event), EventFact> _firsts = new();
    private readonly PriorityQueue<string, DateTimeOffset> _due = new();
    private readonly Dictionary<string, DateTimeOffset> _scheduled = new(StringComparer.Ordinal);
    private Dictionary<string, List<SelectorUse>> _selectorsByEvent = new(StringComparer.Ordinal);
    private HashSet<string> _firstNames = new(StringComparer.Ordinal);
    private List<Audience> _timeDependent = [];

    // What Affected returns, reused from one message to the next (the engine serialises its callers).
    private readonly List<Audience> _affected = [];

    /// <summary>How one selector is read: the windows back from now and the absolute bounds its conditions use.</summary>
    private sealed class SelectorUse(EventSelector selector)
    {
        public EventSelector Selector { get; } = selector;

        public HashSet<TimeSpan> Withins { get; } = [];

        public HashSet<DateTimeOffset> Bounds { get; } = [];

        /// <summary>A sequence or an unbounded condition reads all of history, so nothing may be pruned.</summary>
        public bool KeepAll { get; set; }
    }

    public int Count => _audiences.Count;

    public IReadOnlyCollection<Audience> All => _audiences.Values;

    public Audience? Get(string id) => _audiences.GetValueOrDefault(id);

    public AudienceCondition? Definition(string id) => _audiences.GetValueOrDefault(id)?.Definition;

    /// <summary>The track event names any audience reads: what a backfill must feed to <see cref="Observe"/>.</summary>
    public IReadOnlyCollection<string> EventNames => [.. _selectorsByEvent.Keys.Concat(_firstNames).Distinct(StringComparer.Ordinal)];

    /// <summary>Adds or replaces an audience. Call <see cref="Observe"/> with its events (a backfill) before evaluating it.</summary>
    public void Define(Audience audience, Func<string, (string Event, bool Windowed)?> computedEvent)
    {
        _audiences[audience.Id] = audience;
        if (!_members.ContainsKey(audience.Id)) { _members[audience.Id] = new HashSet<string>(StringComparer.Ordinal); }
        Reindex(computedEvent);
    }

    /// <summary>Forgets an audience; returns an exit for every member.</summary>
    public List<AudienceChange> Remove(string id, DateTimeOffset now, Func<string, (string Event, bool Windowed)?> computedEvent)
    {
        var changes = new List<AudienceChange>();
        if (!_audiences.Remove(id)) { return changes; }
        if (_members.Remove(id, out var members))
        {
            foreach (var profile in members.Order(StringComparer.Ordinal))
            {
                _memberOf[profile].Remove(id);
                changes.Add(new AudienceChange(id, profile, false, now, null, "audience deleted"));
            }
        }

        Reindex(computedEvent);
        return changes;
    }

    private void Reindex(Func<string, (string Event, bool Windowed)?> computedEvent)
    {
        var byEvent = new Dictionary<string, List<SelectorUse>>(StringComparer.Ordinal);
        var uses = new Dictionary<string, SelectorUse>(StringComparer.Ordinal);
        var firsts = new HashSet<string>(StringComparer.Ordinal);
        SelectorUse Use(EventSelector selector)
        {
            if (!uses.TryGetValue(selector.Key, out var use))
            {
                uses[selector.Key] = use = new SelectorUse(selector);
                if (!byEvent.TryGetValue(selector.Event, out var list)) { byEvent[selector.Event] = list = []; }
                list.Add(use);
            }

            return use;
        }

        _dependencies.Clear();
        foreach (var audience in _audiences.Values)
        {
            _dependencies[audience.Id] = AudienceDependencies.Of(audience.Definition, Definition, computedEvent);
            AudienceDefinition.Walk(audience.Definition, node =>
            {
                switch (node)
                {
                    case EventCondition e:
                        var use = Use(AudienceEvaluator.SelectorOf(e));
                        if (e.Window.Within is { } within) { use.Withins.Add(within); }
                        else if (e.Window == TimeWindow.AllTime) { use.KeepAll = true; }
                        else
                        {
                            // Events before an absolute window's end may still count; keep them all.
                            use.KeepAll = true;
                            if (e.Window.From is { } from) { use.Bounds.Add(from); }
                            if (e.Window.To is { } to) { use.Bounds.Add(to); }
                        }

                        break;
                    case SequenceCondition s:
                        foreach (var step in s.Steps)
                        {
                            Use(AudienceEvaluator.SelectorOf(step)).KeepAll = true;
                            if (step.First) { firsts.Add(step.Event); }
                        }

                        break;
                    default: break;
                }
            });
        }

        _selectorsByEvent = byEvent;
        _firstNames = firsts;
        _timeDependent = [.. _audiences.Values.Where(a => _dependencies[a.Id].TimeDependent)];
        var live = uses.Keys.ToHashSet(StringComparer.Ordinal);
        foreach (var key in _facts.Keys.Where(k => !live.Contains(k.Selector)).ToList()) { _facts.Remove(key); }
        foreach (var key in _firsts.Keys.Where(k => !firsts.Contains(k.Event)).ToList()) { _firsts.Remove(key); }
    }

    /// <summary>Records what a stored message means for the audiences' facts. Idempotent: a message seen twice counts once.</summary>
    public void Observe(string profileId, long seq, CollectedEvent e, JsonElement message)
    {
        if (e.Type != MessageType.Track || e.Event is not { } name) { return; }
        var fact = new EventFact(seq, e.Timestamp, null);
        if (_selectorsByEvent.TryGetValue(name, out var uses))
        {
            foreach (var use in uses)
            {
                if (!use.Selector.Matches(name, message)) { continue; }
                var key = (profileId, use.Selector.Key);
                if (!_facts.TryGetValue(key, out var list)) { _facts[key] = list = []; }
                Insert(list, fact with { Number = use.Selector.NumberOf(message) });
            }
        }

        if (_firstNames.Contains(name) && (!_firsts.TryGetValue((profileId, name), out var first) || fact < first)) { _firsts[(profileId, name)] = fact; }
    }

    private static void Insert(List<EventFact> list, EventFact fact)
    {
        if (list.Count == 0 || list[^1] < fact) { list.Add(fact); return; }
        var at = list.BinarySearch(fact);
        if (at < 0) { list.Insert(~at, fact); }
    }

    public IReadOnlyList<EventFact> FactsOf(string profileId, EventSelector selector) =>
        _facts.TryGetValue((profileId, selector.Key), out var list) ? list : [];

    public EventFact? FirstOf(string profileId, string eventName) => _firsts.TryGetValue((profileId, eventName), out var f) ? f : null;

    /// <summary>Folds a merged-away profile's facts into the survivor's and takes it out of every audience.</summary>
    public void Merge(string survivor, string merged, DateTimeOffset now, long? seq, List<AudienceChange> changes)
    {
        foreach (var uses in _selectorsByEvent.Values)
        {
            foreach (var use in uses)
            {
                if (!_facts.Remove((merged, use.Selector.Key), out var from)) { continue; }
                if (!_facts.TryGetValue((survivor, use.Selector.Key), out var into)) { _facts[(survivor, use.Selector.Key)] = from; continue; }
                foreach (var fact in from) { Insert(into, fact); }
            }
        }

        foreach (var name in _firstNames)
        {
            if (!_firsts.Remove((merged, name), out var first)) { continue; }
            if (!_firsts.TryGetValue((survivor, name), out var mine) || first < mine) { _firsts[(survivor, name)] = first; }
        }

        ExitAll(merged, now, seq, $"merged into {survivor}", changes);
    }

    /// <summary>Takes a profile out of every audience it is in (it was merged away, or no longer exists).</summary>
    public void ExitAll(string profileId, DateTimeOffset now, long? seq, string reason, List<AudienceChange> changes)
    {
        if (!_memberOf.Remove(profileId, out var audiences)) { return; }
        foreach (var id in audiences.Order(StringComparer.Ordinal))
        {
            _members[id].Remove(profileId);
            changes.Add(new AudienceChange(id, profileId, false, now, seq, reason));
        }

        _scheduled.Remove(profileId);
    }

    /// <summary>
    /// The audiences a message may change for its profile. The list is reused by the next call: read it before. Runs
    /// for every message under the engine's lock, so it allocates nothing.
    /// </summary>
    public IReadOnlyList<Audience> Affected(string? trackEvent, IReadOnlyList<string> changedTraits, bool identifiersChanged, bool merged)
    {
        _affected.Clear();
        foreach (var audience in _audiences.Values)
        {
            var deps = _dependencies[audience.Id];
            if (merged
                || (trackEvent is not null && deps.Events.Contains(trackEvent))
                || (identifiersChanged && deps.IdentifierTypes.Count > 0)
                || ReadsAny(deps, changedTraits))
            {
                _affected.Add(audience);
            }
        }

        return _affected;
    }

    private static bool ReadsAny(AudienceDependencies deps, IReadOnlyList<string> traits)
    {
        for (var i = 0; i < traits.Count; i++)
        {
            if (deps.Traits.Contains(traits[i])) { return true; }
        }

        return false;
    }

    /// <summary>Audiences whose membership can change with time alone.</summary>
    public IReadOnlyList<Audience> TimeDependent => _timeDependent;

    /// <summary>Evaluates <paramref name="audiences"/> for one profile and records entries and exits.</summary>
    public void Evaluate(string profileId, IAudienceFacts facts, IReadOnlyList<Audience> audiences, DateTimeOffset now, long? seq, string reason, List<AudienceChange> changes)
    {
        for (var i = 0; i < audiences.Count; i++)
        {
            var audience = audiences[i];
            var inside = AudienceEvaluator.Evaluate(audience.Definition, facts, now);
            var members = _members[audience.Id];
            if (inside == members.Contains(profileId)) { continue; }
            SetMember(audience.Id, profileId, inside);
            changes.Add(new AudienceChange(audience.Id, profileId, inside, now, seq, reason));
        }
    }

    /// <summary>Sets a membership without recording a change: used to restore the stored state at start.</summary>
    public void SetMember(string audienceId, string profileId, bool inside)
    {
        if (!_members.TryGetValue(audienceId, out var members)) { return; }
        if (inside)
        {
            members.Add(profileId);
            if (!_memberOf.TryGetValue(profileId, out var of)) { _memberOf[profileId] = of = new HashSet<string>(StringComparer.Ordinal); }
            of.Add(audienceId);
        }
        else
        {
            members.Remove(profileId);
            if (_memberOf.TryGetValue(profileId, out var of)) { of.Remove(audienceId); }
        }
    }

    public bool IsMember(string audienceId, string profileId) => _members.TryGetValue(audienceId, out var m) && m.Contains(profileId);

    public int MemberCount(string audienceId) => _members.TryGetValue(audienceId, out var m) ? m.Count : 0;

    /// <summary>The members of an audience, sorted by id.</summary>
    public List<string> Members(string audienceId) => _members.TryGetValue(audienceId, out var m) ? [.. m.Order(StringComparer.Ordinal)] : [];

    /// <summary>Every profile that is in at least one audience (so a full evaluation can also find those who left).</summary>
    public IEnumerable<string> ProfilesInAnyAudience => _memberOf.Where(p => p.Value.Count > 0).Select(p => p.Key);

    public IReadOnlyList<string> AudiencesOf(string profileId) =>
        _memberOf.TryGetValue(profileId, out var of) ? [.. of.Order(StringComparer.Ordinal)] : [];

    /// <summary>
    /// Works out when time alone can next change one of the profile's memberships (an event leaving or entering a
    /// window, an absolute bound passing, a windowed computed trait changing) and schedules it. Prunes facts no
    /// window can count any more. <paramref name="computedNext"/> gives, from <paramref name="state"/>, when a computed
    /// trait next changes by time alone (a static function over a value, so a message's call allocates nothing).
    /// </summary>
    public void Schedule<TState>(string profileId, DateTimeOffset now, TState state, Func<TState, string, DateTimeOffset?> computedNext)
    {
        DateTimeOffset? next = null;
        void Offer(DateTimeOffset at)
        {
            if (at > now && (next is null || at < next)) { next = at; }
        }

        foreach (var uses in _selectorsByEvent.Values)
        {
            foreach (var use in uses)
            {
                if (use.Withins.Count == 0 && use.Bounds.Count == 0) { continue; }
                if (!_facts.TryGetValue((profileId, use.Selector.Key), out var list) || list.Count == 0) { continue; }
                if (!use.KeepAll)
                {
                    var longest = TimeSpan.MinValue;
                    foreach (var within in use.Withins) { longest = within > longest ? within : longest; }
                    var oldest = now - longest;
                    var stale = 0;
                    while (stale < list.Count && list[stale].Timestamp < oldest) { stale++; }
                    if (stale > 0) { list.RemoveRange(0, stale); }
                }

                foreach (var fact in list)
                {
                    Offer(fact.Timestamp);
                    foreach (var within in use.Withins) { Offer(fact.Timestamp + within + Tick); }
                }

                foreach (var bound in use.Bounds) { Offer(bound); }
            }
        }

        foreach (var audience in _timeDependent)
        {
            foreach (var name in _dependencies[audience.Id].Computed)
            {
                if (computedNext(state, name) is { } at) { Offer(at + Tick); }
            }
        }

        if (next is { } due && (!_scheduled.TryGetValue(profileId, out var current) || current != due))
        {
            _scheduled[profileId] = due;
            _due.Enqueue(profileId, due);
        }
    }

    /// <summary>The profiles whose scheduled instant has come, each once.</summary>
    public List<string> TakeDue(DateTimeOffset now)
    {
        var due = new List<string>();
        while (_due.TryPeek(out var profile, out var at) && at <= now)
        {
            _due.Dequeue();
            // A profile rescheduled later (or merged away) left a stale entry behind: skip it.
            if (_scheduled.TryGetValue(profile, out var current) && current == at)
            {
                _scheduled.Remove(profile);
                due.Add(profile);
            }
        }

        return due;
    }

    /// <summary>The next scheduled instant, if any.</summary>
    public DateTimeOffset? NextDue => _due.TryPeek(out _, out var at) ? at : null;

    /// <summary>Forgets every fact and schedule (the memberships and definitions stay), before a rebuild.</summary>
    public void ClearFacts()
    {
        _facts.Clear();
        _firsts.Clear();
        _due.Clear();
        _scheduled.Clear();
    }
}
