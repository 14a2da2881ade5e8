using System.Text.Json;
using Tessera.Core.Audiences;
using Tessera.Core.Collection;

namespace Tessera.Core.Profiles;

/// <summary>The audience side of the engine: definitions, memberships, and the facts evaluation reads.</summary>
public sealed partial class ProfileEngine
{
    /// <summary>Every defined audience.</summary>
    public IReadOnlyList<Audience> Audiences
    {
        get { lock (_sync) { return [.. _audiences.All.OrderBy(a => a.CreatedAt).ThenBy(a => a.Id, StringComparer.Ordinal)]; } }
    }

    public Audience? GetAudience(string id)
    {
        lock (_sync) { return _audiences.Get(id); }
    }

    /// <summary>The track event names audiences read: the events a backfill must feed to <see cref="ObserveForAudiences"/>.</summary>
    public IReadOnlyCollection<string> AudienceEventNames
    {
        get { lock (_sync) { return _audiences.EventNames; } }
    }

    /// <summary>Adds or replaces an audience's definition. Memberships change only through <see cref="EvaluateAudiences"/>.</summary>
    public void DefineAudience(Audience audience)
    {
        lock (_sync) { _audiences.Define(audience, ComputedEvent); }
    }

    /// <summary>Removes an audience; returns an exit for each member.</summary>
    public IReadOnlyList<AudienceChange> RemoveAudience(string id)
    {
        lock (_sync) { return _audiences.Remove(id, Clock.GetUtcNow(), ComputedEvent); }
    }

    /// <summary>Restores stored memberships at start, recording nothing.</summary>
    public void RestoreMemberships(IEnumerable<(string AudienceId, string ProfileId)> members)
    {
        lock (_sync)
        {
            foreach (var (audience, profile) in members) { _audiences.SetMember(audience, profile, true); }
        }
    }

    /// <summary>Applies entries and exits another process recorded, so this one does not record them again.</summary>
    public void ApplyRecordedChanges(IEnumerable<(string AudienceId, string ProfileId, bool Entered)> changes)
    {
        lock (_sync)
        {
            foreach (var (audience, profile, entered) in changes) { _audiences.SetMember(audience, profile, entered); }
        }
    }

    /// <summary>
    /// Feeds stored events (with the profile id they were stored under) to the audiences' facts. Used at start,
    /// when an audience is defined, and after a rebuild; a message fed twice counts once.
    /// </summary>
    public void ObserveForAudiences(IEnumerable<(string ProfileId, long Seq, CollectedEvent Event)> events)
    {
        lock (_sync)
        {
            foreach (var (storedUnder, seq, e) in events)
            {
                if (_graph.SurvivorOf(storedUnder) is not { } live) { continue; }
                using var document = e.Raw.Parse();
                _audiences.Observe(live, seq, e, document.RootElement);
            }
        }
    }

    /// <summary>
    /// Evaluates the named audiences (all when null) for every live profile, records entries and exits (members
    /// that are no longer live profiles exit), and schedules time-based changes. Used at start (time passed while
    /// Tessera was down), when an audience is created or changed, and after identities are rebuilt.
    /// </summary>
    public IReadOnlyList<AudienceChange> EvaluateAudiences(IReadOnlyCollection<string>? audienceIds, string reason)
    {
        lock (_sync)
        {
            var now = Clock.GetUtcNow();
            var changes = new List<AudienceChange>();
            var audiences = _audiences.All.Where(a => audienceIds is null || audienceIds.Contains(a.Id)).ToList();
            foreach (var gone in _audiences.ProfilesInAnyAudience.Where(p => _graph.Find(p) is null).ToList())
            {
                _audiences.ExitAll(gone, now, null, "profile no longer exists", changes);
            }

            foreach (var profile in _graph.LiveIds)
            {
                _audiences.Evaluate(profile, _facts.For(profile), audiences, now, null, reason, changes);
                ScheduleAudiences(profile, now);
            }

            return changes;
        }
    }

    /// <summary>
    /// Re-evaluates the profiles whose time-window changes are due; returns the entries and exits. Returns none, at once,
    /// while the engine is busy (as <see cref="TryGetNextAudienceTick"/>): what is due stays due for the next tick.
    /// </summary>
    public IReadOnlyList<AudienceChange> TickAudiences()
    {
        if (!_sync.TryEnter()) { return []; }
        try
        {
            var now = Clock.GetUtcNow();
            var changes = new List<AudienceChange>();
            var timeDependent = _audiences.TimeDependent;
            foreach (var profile in _audiences.TakeDue(now))
            {
                if (_graph.Find(profile) is null) { continue; }
                _audiences.Evaluate(profile, _facts.For(profile), timeDependent, now, null, "time window passed", changes);
                ScheduleAudiences(profile, now);
            }

            return changes;
        }
        finally
        {
            _sync.Exit();
        }
    }

    /// <summary>
    /// When <see cref="TickAudiences"/> next has work (<paramref name="next"/> null: never); false, at once, while the
    /// engine is busy (applying a chunk of events holds it for tens of ms under load). The audience ticker asks from the
    /// thread pool, whose few threads serve HTTP: waiting here held one for up to 63 ms at 25,000 events/s and stalled
    /// requests behind it (docs/benchmarks.md, "The stalls of the 200s"); it asks again at its next tick instead.
    /// </summary>
    public bool TryGetNextAudienceTick(out DateTimeOffset? next)
    {
        next = null;
        if (!_sync.TryEnter()) { return false; }
        try
        {
            next = _audiences.NextDue;
            return true;
        }
        finally
        {
            _sync.Exit();
        }
    }

    public bool IsMember(string audienceId, string profileId)
    {
        lock (_sync) { return _audiences.IsMember(audienceId, profileId); }
    }

    public int MemberCount(string audienceId)
    {
        lock (_sync) { return _audiences.MemberCount(audienceId); }
    }

    /// <summary>An audience's members, sorted by profile id.</summary>
    public List<string> Members(string audienceId)
    {
        lock (_sync) { return _audiences.Members(audienceId); }
    }

    public IReadOnlyList<string> AudiencesOf(string profileId)
    {
        lock (_sync) { return _audiences.AudiencesOf(profileId); }
    }

    /// <summary>Evaluates a definition for one live profile now, against the facts the defined audiences keep.</summary>
    public bool Evaluate(AudienceCondition definition, string profileId)
    {
        lock (_sync) { return _graph.Find(profileId) is not null && AudienceEvaluator.Evaluate(definition, _facts.For(profileId), Clock.GetUtcNow()); }
    }

    private (string Event, bool Windowed)? ComputedEvent(string name) =>
        _computed.Definitions.FirstOrDefault(d => d.Name == name) is { } d ? (d.Event, d.Window is not null) : null;

    /// <summary>Answers the evaluator from the engine's hot state; one instance, pointed at one profile at a time, under the lock.</summary>
    private sealed class ProfileFacts(ProfileEngine engine) : IAudienceFacts
    {
        private string _profile = "";

        public ProfileFacts For(string profileId)
        {
            _profile = profileId;
            return this;
        }

        public bool TryTrait(string name, out JsonElement value)
        {
            value = default;
            if (engine._traits.Of(_profile) is not { } traits || !traits.TryGetValue(name, out var trait) || trait.Value is null) { return false; }
            value = JsonSerializer.SerializeToElement(trait.Value);
            return value.ValueKind != JsonValueKind.Null;
        }

        public IEnumerable<string> Identifiers(string type) =>
            engine._graph.Find(_profile) is { } p ? p.Identifiers.Where(i => i.Type == type).Select(i => i.Value) : [];

        public bool TryComputed(string name, DateTimeOffset now, out JsonElement value)
        {
            value = default;
            if (engine._computed.ValueOf(_profile, name, now) is not { } node) { return false; }
            value = JsonSerializer.SerializeToElement(node);
            return value.ValueKind != JsonValueKind.Null;
        }

        public IReadOnlyList<EventFact> Events(EventSelector selector) => engine._audiences.FactsOf(_profile, selector);

        public EventFact? FirstEvent(string eventName) => engine._audiences.FirstOf(_profile, eventName);

        public AudienceCondition? Definition(string segmentId) => engine._audiences.Definition(segmentId);
    }
}
