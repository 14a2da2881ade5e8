using System.Collections.Concurrent;
using System.Text.Json;
using System.Text.Json.Nodes;
using Tessera.Core.Journeys;
using Tessera.Core.Profiles;
using Tessera.Server.Activation;
using Tessera.Storage.Audiences;
using Tessera.Storage.Events;
using Tessera.Storage.Journeys;

namespace Tessera.Server.Journeys;

/// <summary>
/// Moves runs for the store's journey steps: turns the logs' causes (audience entries and exits, events) into
/// entries, awaited events and exits, in log order; runs due waits; and turns send steps into outbox deliveries
/// (<see cref="JourneySends"/>). Branch conditions are evaluated on the live profile in the engine. A run's steps
/// come from the definition version it entered with.
/// </summary>
public sealed class JourneyRunner(Func<ProfileEngine> engine) : IJourneyRunner
{
    private readonly ConcurrentDictionary<(string, int), JourneyDefinition> _versions = new();

    public JourneyInterest Interest(IReadOnlyList<StoredJourney> journeys, IReadOnlyList<JourneyVersionText> versions)
    {
        var events = new HashSet<string>(StringComparer.Ordinal);
        var segments = new HashSet<string>(StringComparer.Ordinal);
        var live = journeys.ToDictionary(j => j.Journey.Id, j => j.Journey, StringComparer.Ordinal);
        foreach (var j in live.Values.Where(j => j.Status == JourneyStatus.Active))
        {
            if (j.Definition.Entry.Event is { } e) { events.Add(e); }
            if (j.Definition.Entry.SegmentId is { } s) { segments.Add(s); }
        }

        // Runs may be on any version of a journey that is not deleted: what their waits and exits read counts too.
        foreach (var v in versions.Where(v => live.ContainsKey(v.JourneyId)))
        {
            var definition = Definition(v);
            foreach (var t in definition.Exit)
            {
                if (t.Event is { } e) { events.Add(e); }
                if ((t.EnteredSegment ?? t.LeftSegment) is { } s) { segments.Add(s); }
            }

            foreach (var w in definition.Steps.OfType<WaitForEventStep>()) { events.Add(w.Event); }
        }

        return new JourneyInterest(events, segments);
    }

    public IReadOnlyCollection<string> Cluster(IEnumerable<string> profileIds)
    {
        var current = engine();
        var all = new HashSet<string>(StringComparer.Ordinal);
        foreach (var id in profileIds) { all.UnionWith(DeliveryDeriver.Cluster(current, id)); }
        return all;
    }

    public JourneyOutcome Derive(JourneyInput input)
    {
        var current = engine();
        var step = new Step(this, input, current);
        var journeys = input.Journeys.Select(j => j.Journey).ToList();
        var entering = input.Journeys.Where(j => j.Journey.Status == JourneyStatus.Active).ToList();

        // One timeline in log order: an audience change sorts right after the message that caused it; one caused by
        // time alone (no seq) sorts before this step's events.
        var timeline = input.Changes.Select(c => (Seq: c.Change.Seq ?? input.SeqBefore, Order: 1, Id: c.Id, Change: (StoredAudienceChange?)c, Event: (StoredEvent?)null))
            .Concat(input.Events.Select(e => (Seq: e.Seq, Order: 0, Id: e.Seq, Change: (StoredAudienceChange?)null, Event: (StoredEvent?)e)))
            .OrderBy(x => x.Seq).ThenBy(x => x.Order).ThenBy(x => x.Id);
        foreach (var cause in timeline)
        {
            if (cause.Change is { } change) { step.OnChange(change, entering); }
            else { step.OnEvent(cause.Event!, entering); }
        }

        return step.Outcome(journeys);
    }

    public JourneyOutcome Advance(JourneyInput input)
    {
        var current = engine();
        var step = new Step(this, input, current);
        foreach (var position in input.Positions) { step.OnDue(position); }
        return step.Outcome([.. input.Journeys.Select(j => j.Journey)]);
    }

    private JourneyDefinition Definition(JourneyVersionText v) =>
        _versions.GetOrAdd((v.JourneyId, v.Version), _ => JourneyParser.ParseStored(v.Definition, $"journey {v.JourneyId} version {v.Version}"));

    /// <summary>One step's work: the runs it touched, indexed by the live profile they belong to.</summary>
    private sealed class Step
    {
        private readonly JourneyRunner _runner;
        private readonly JourneyInput _input;
        private readonly ProfileEngine _engine;
        private readonly JourneyMachine _machine;
        private readonly Dictionary<long, JourneyPosition> _changed = [];
        private readonly Dictionary<string, List<JourneyPosition>> _active = new(StringComparer.Ordinal);
        private readonly Dictionary<(string Journey, string Profile), LastRun> _lastRuns = [];
        private readonly Dictionary<string, Journey> _journeys = new(StringComparer.Ordinal);
        private readonly Dictionary<(string, int), JourneyVersionText> _versionTexts = [];

        public Step(JourneyRunner runner, JourneyInput input, ProfileEngine engine)
        {
            _runner = runner;
            _input = input;
            _engine = engine;
            _machine = new JourneyMachine((condition, profile) => engine.SurvivorOf(profile) is { } live && engine.Evaluate(condition, live));
            foreach (var j in input.Journeys) { _journeys[j.Journey.Id] = j.Journey; }
            foreach (var v in input.Versions) { _versionTexts[(v.JourneyId, v.Version)] = v; }
            foreach (var p in input.Positions) { ActiveOf(Live(p.ProfileId)).Add(p); }
            foreach (var ((journey, profile), run) in input.LastRuns)
            {
                var key = (journey, Live(profile));
                if (!_lastRuns.TryGetValue(key, out var known) || run.Run > known.Run) { _lastRuns[key] = run; }
            }
        }

        public void OnChange(StoredAudienceChange stored, List<StoredJourney> entering)
        {
            var change = stored.Change;
            var person = Live(change.ProfileId);
            foreach (var p in ActiveOf(person).ToList())
            {
                if (Definition(p) is not { } d) { continue; }
                var trigger = d.Exit.FirstOrDefault(t => change.Entered ? t.EnteredSegment == change.AudienceId : t.LeftSegment == change.AudienceId);
                if (trigger is not null) { Replace(p, _machine.Exit(p, trigger.Describe(), _input.Now)); }
            }

            if (!change.Entered) { return; }
            foreach (var j in entering)
            {
                if (j.Journey.Definition.Entry.SegmentId != change.AudienceId || stored.Id <= j.AfterChangeId) { continue; }
                var context = new JsonObject { ["segment"] = new JsonObject { ["id"] = change.AudienceId, ["name"] = _engine.GetAudience(change.AudienceId)?.Name } };
                TryEnter(j.Journey, person, context, $"entered audience {change.AudienceId}", change.Seq ?? _input.SeqBefore);
            }
        }

        public void OnEvent(StoredEvent e, List<StoredJourney> entering)
        {
            var person = Live(e.ProfileId!);
            var name = e.Message.Event ?? "";
            using var document = e.Message.Raw.Parse();
            var message = document.RootElement;
            foreach (var p in ActiveOf(person).ToList())
            {
                if (Definition(p) is not { } d) { continue; }
                var trigger = d.Exit.FirstOrDefault(t => t.Event == name && t.Where.All(f => f.Matches(message)));
                if (trigger is not null)
                {
                    Replace(p, _machine.Exit(p, trigger.Describe(), _input.Now));
                    continue;
                }

                if (JourneyMachine.Awaits(p, name, e.Seq) && d.Step(p.StepId) is WaitForEventStep w && w.Event == name && w.Where.All(f => f.Matches(message)))
                {
                    var runNow = _journeys.TryGetValue(p.JourneyId, out var j) && j.Status == JourneyStatus.Active;
                    Replace(p, _machine.EventArrived(p, w, d, e.Message.MessageId, e.Seq, _input.Now, runNow));
                }
            }

            foreach (var j in entering)
            {
                var entry = j.Journey.Definition.Entry;
                if (entry.Event != name || e.Seq <= j.AfterSeq || !entry.Where.All(f => f.Matches(message))) { continue; }
                var properties = message.TryGetProperty("properties", out var props) && props.ValueKind == JsonValueKind.Object ? JsonNode.Parse(props.GetRawText()) : new JsonObject();
                var context = new JsonObject { ["event"] = new JsonObject { ["name"] = name, ["messageId"] = e.Message.MessageId, ["seq"] = e.Seq, ["properties"] = properties } };
                TryEnter(j.Journey, person, context, $"did {name} (message {e.Message.MessageId})", e.Seq);
            }
        }

        public void OnDue(JourneyPosition p) =>
            Replace(p, Definition(p) is { } d ? _machine.Due(p, d, _input.Now, _input.SeqNow) : _machine.Exit(p, $"version {p.Version} of the journey is missing", _input.Now));

        public JourneyOutcome Outcome(List<Journey> journeys)
        {
            var produced = _machine.Take();
            var sends = new JourneySends(_engine, _input);
            var names = journeys.ToDictionary(j => j.Id, j => j.Name, StringComparer.Ordinal);
            var deliveries = produced.Sends.Select(s => sends.Build(s, names.GetValueOrDefault(s.Position.JourneyId) ?? s.Position.JourneyId)).ToList();
            return new JourneyOutcome([.. _changed.Values.OrderBy(p => p.Id)], produced.History, deliveries);
        }

        /// <summary>Enters <paramref name="person"/> unless they are in the journey now or its re-entry rules keep them out.</summary>
        private void TryEnter(Journey journey, string person, JsonObject context, string cause, long afterSeq)
        {
            if (ActiveOf(person).Any(p => p.JourneyId == journey.Id)) { return; }
            var last = _lastRuns.GetValueOrDefault((journey.Id, person));
            if (last is not null)
            {
                var policy = journey.Definition.Reentry;
                if (!policy.Allowed) { return; }
                if (policy.Period is { } period && _input.Now < last.EnteredAt + period) { return; }
            }

            var run = (last?.Run ?? 0) + 1;
            var position = _machine.Enter(_input.NextPositionId(), journey, person, run, _input.Now, afterSeq, context.ToJsonString(), cause, runNow: true);
            _lastRuns[(journey.Id, person)] = new LastRun(run, _input.Now, true);
            _changed[position.Id] = position;
            if (position.State == PositionState.Active) { ActiveOf(person).Add(position); }
        }

        private void Replace(JourneyPosition before, JourneyPosition after)
        {
            _changed[after.Id] = after;
            var list = ActiveOf(Live(before.ProfileId));
            list.RemoveAll(p => p.Id == before.Id);
            if (after.State == PositionState.Active) { list.Add(after); }
        }

        private JourneyDefinition? Definition(JourneyPosition p) =>
            _versionTexts.TryGetValue((p.JourneyId, p.Version), out var v) ? _runner.Definition(v) : null;

        private List<JourneyPosition> ActiveOf(string person)
        {
            if (!_active.TryGetValue(person, out var list)) { _active[person] = list = []; }
            return list;
        }

        /// <summary>The live profile a (possibly merged-away) profile belongs to now.</summary>
        private string Live(string profileId) => _engine.SurvivorOf(profileId) ?? profileId;
    }
}
