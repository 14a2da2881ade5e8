using System.Text.Json;
using Tessera.Core.Audiences;
using Tessera.Core.Collection;
using Tessera.Core.Identity;

namespace Tessera.Core.Profiles;

/// <summary>A copy of the live profile state (see <see cref="ProfileEngine.StateSnapshot"/>).</summary>
public sealed record ProfileStateSnapshot(
    IReadOnlyList<(string Id, string Live)> ProfileIds,
    IReadOnlyList<(string ProfileId, Identifier Identifier)> Identifiers,
    IReadOnlyList<(string ProfileId, string Name, TraitValue Value)> Traits);

/// <summary>What processing one stored message produced.</summary>
public sealed record ProcessedEvent(long Seq, string? ProfileId, IReadOnlyList<IdentityChange> Changes, IReadOnlyList<TraitChange> Traits, IReadOnlyList<AudienceChange>? Audiences = null);

/// <summary>
/// The real-time profile path: for each new message, in log order, read its identifiers, resolve them in the
/// identity graph, and update the profile's traits. Holds the hot state (graph and current traits) in memory; the
/// store persists what <see cref="Process"/> returns in the same commit as the message, and replays it at start
/// through <see cref="Restore"/>. Thread-safe: one writer processes, any number of readers look up.
/// </summary>
public sealed partial class ProfileEngine
{
    private readonly Lock _sync = new();
    private readonly IdentifierExtractor _extractor;
    private IdentityResolver _resolver;
    private IdentityGraph _graph = new();
    private ProfileTraits _traits;
    private ComputedTraits _computed = new();
    private AudienceEngine _audiences = new();
    private readonly ProfileFacts _facts;

    private readonly System.Collections.Concurrent.ConcurrentDictionary<string, string> _sourceNames = new(StringComparer.Ordinal);

    public ProfileEngine(IdentityRules identityRules, ProfileRules profileRules, IReadOnlyList<IdentitySeparation>? separations = null)
    {
        _extractor = new IdentifierExtractor(identityRules);
        _resolver = new IdentityResolver(identityRules, separations);
        _traits = new ProfileTraits(profileRules, SourceName);
        _facts = new ProfileFacts(this);
    }

    /// <summary>The clock audiences are evaluated against ("within 30d" counts back from its now).</summary>
    public TimeProvider Clock { get; set; } = TimeProvider.System;

    /// <summary>Tells the engine a source's name, so source-priority rules may name sources instead of ids.</summary>
    public void KnowSource(string id, string name) => _sourceNames[id] = name;

    private string? SourceName(string id) => _sourceNames.GetValueOrDefault(id);

    public IdentityRules IdentityRules => _resolver.Rules;

    public ProfileRules ProfileRules => _traits.Rules;

    public IReadOnlyList<IdentitySeparation> Separations => _resolver.Separations;

    /// <summary>An empty engine to replay the log into: these rules (default: the same), these separations (default: the same).</summary>
    public ProfileEngine Fresh(IdentityRules? identityRules = null, IReadOnlyList<IdentitySeparation>? separations = null)
    {
        var fresh = new ProfileEngine(identityRules ?? IdentityRules, ProfileRules, separations ?? Separations) { Clock = Clock };
        foreach (var (id, name) in _sourceNames) { fresh.KnowSource(id, name); }
        foreach (var definition in ComputedDefinitions) { fresh._computed.Define(definition); }
        return fresh;
    }

    public IReadOnlyList<ComputedTraitDefinition> ComputedDefinitions
    {
        get { lock (_sync) { return [.. _computed.Definitions]; } }
    }

    /// <summary>Adds or replaces a computed trait. Its values start empty: feed the profiles' past events through <see cref="Backfill"/>.</summary>
    public void DefineComputed(ComputedTraitDefinition definition)
    {
        lock (_sync) { _computed.Define(definition); }
    }

    public bool RemoveComputed(string name)
    {
        lock (_sync) { return _computed.Remove(name); }
    }

    /// <summary>
    /// Feeds stored events (with the profile id they were stored under) to the computed traits: all of them, or
    /// only <paramref name="only"/>. Used at start and when a trait is defined.
    /// </summary>
    public void Backfill(IEnumerable<(string ProfileId, CollectedEvent Event)> events, ComputedTraitDefinition? only = null)
    {
        lock (_sync)
        {
            foreach (var (storedUnder, e) in events)
            {
                if (_graph.SurvivorOf(storedUnder) is not { } live) { continue; }
                using var document = e.Raw.Parse();
                _computed.Apply(live, e, document.RootElement, only);
            }
        }
    }

    /// <summary>Sets the separations the store keeps, before anything is restored or processed.</summary>
    public void UseSeparations(IReadOnlyList<IdentitySeparation> separations)
    {
        lock (_sync) { _resolver = new IdentityResolver(_resolver.Rules, separations); }
    }

    /// <summary>What replacing this engine's profiles with <paramref name="other"/>'s would change.</summary>
    public GraphComparison CompareWith(ProfileEngine other)
    {
        lock (_sync)
        {
            lock (other._sync) { return GraphComparison.Compare(_graph, other._graph); }
        }
    }

    /// <summary>
    /// Resolves <paramref name="events"/> (already deduplicated, with their log positions) in order. Each parsed message
    /// goes, with its index, to <paramref name="parsed"/> right after it is processed, while the engine still holds its
    /// document (valid only during the call): a caller that reads the messages too need not parse them again.
    /// </summary>
    public IReadOnlyList<ProcessedEvent> Process(IReadOnlyList<(long Seq, CollectedEvent Event)> events, Action<int, JsonElement>? parsed = null)
    {
        // Parsed one at a time and released at once. Parsing the chunk on both cores first was measured slower
        // (143k vs 155k events/s, docs/benchmarks.md) and held every document of the chunk alive.
        var results = new ProcessedEvent[events.Count];
        lock (_sync)
        {
            for (var i = 0; i < events.Count; i++)
            {
                var document = Parse(events[i].Event);
                using (document.Document)
                {
                    results[i] = ProcessOne(events[i].Seq, events[i].Event, document);
                    parsed?.Invoke(i, document.Document.RootElement);
                }
            }
        }

        return results;
    }

    private readonly record struct Parsed(JsonDocument Document, List<Identifier> Identifiers, List<RejectedIdentifier> Rejected);

    private Parsed Parse(CollectedEvent e)
    {
        var document = e.Raw.Parse();
        var (identifiers, rejected) = _extractor.Extract(document.RootElement);
        return new Parsed(document, identifiers, rejected);
    }

    /// <summary>Forgets everything, e.g. after a failed commit, before replaying the store again.</summary>
    public void Clear()
    {
        lock (_sync)
        {
            _graph = new IdentityGraph();
            _traits = new ProfileTraits(_traits.Rules, SourceName);
            var definitions = _computed.Definitions.ToList();
            _computed = new ComputedTraits();
            foreach (var definition in definitions) { _computed.Define(definition); }
            _audiences = new AudienceEngine();
        }
    }

    /// <summary>
    /// Replays stored identity rows (ordered by seq, ordinal) and then trait history. May be called in consecutive
    /// chunks, as long as every identity row comes before any trait row.
    /// </summary>
    public void Restore(IEnumerable<IdentityChange> changes, IEnumerable<TraitChange> traits)
    {
        lock (_sync)
        {
            foreach (var change in changes)
            {
                switch (change.Kind)
                {
                    case IdentityChangeKind.Created:
                        _graph.CreateProfile(change.ProfileId!, change.Seq, change.At);
                        break;
                    case IdentityChangeKind.Linked:
                        _graph.Link(change.Identifier!.Value, change.ProfileId!);
                        break;
                    case IdentityChangeKind.Merged:
                        _graph.Merge(change.ProfileId!, change.OtherProfileId!);
                        break;
                    case IdentityChangeKind.Dropped:
                    case IdentityChangeKind.Rejected:
                    default:
                        break;
                }
            }

            foreach (var trait in traits)
            {
                if (_graph.SurvivorOf(trait.ProfileId) is { } live) { _traits.Offer(live, trait.Name, trait.Value); }
            }
        }
    }

    public string? FindByIdentifier(Identifier identifier)
    {
        lock (_sync) { return _graph.OwnerOf(identifier); }
    }

    /// <summary>The live profile an id resolves to (itself, or the survivor of merges it went into); null if never a profile.</summary>
    public string? SurvivorOf(string profileId)
    {
        lock (_sync) { return _graph.SurvivorOf(profileId); }
    }

    public ProfileView? Get(string profileId) => Get(profileId, DateTimeOffset.UtcNow);

    /// <summary>The profile as of <paramref name="now"/>: windowed computed traits count only events inside their window then.</summary>
    public ProfileView? Get(string profileId, DateTimeOffset now)
    {
        lock (_sync)
        {
            var profile = _graph.Find(profileId);
            if (profile is null) { return null; }
            var traits = _traits.Of(profileId) is { } t ? new Dictionary<string, TraitValue>(t) : new Dictionary<string, TraitValue>();
            return new ProfileView(profile.Id, profile.CreatedAt, [.. profile.Identifiers], traits, _computed.ValuesOf(profileId, now), _graph.MergedFrom(profileId));
        }
    }

    /// <summary>The current traits of a live profile, as a copy; null when it is not live or has none.</summary>
    public Dictionary<string, TraitValue>? TraitsOf(string profileId)
    {
        lock (_sync) { return _traits.Of(profileId) is { } t ? new Dictionary<string, TraitValue>(t, StringComparer.Ordinal) : null; }
    }

    /// <summary>
    /// Everything the stores keep about live profiles for SQL (issue 5), as a copy: every profile id ever made with
    /// the live profile it resolves to, and each live profile's identifiers and current traits.
    /// </summary>
    public ProfileStateSnapshot StateSnapshot()
    {
        lock (_sync)
        {
            var ids = new List<(string Id, string Live)>(_graph.ProfileCount + _graph.MergeCount);
            var identifiers = new List<(string ProfileId, Identifier Identifier)>(_graph.IdentifierCount);
            var traits = new List<(string ProfileId, string Name, TraitValue Value)>();
            foreach (var live in _graph.LiveIds)
            {
                ids.Add((live, live));
                foreach (var identifier in _graph.Find(live)!.Identifiers) { identifiers.Add((live, identifier)); }
                if (_traits.Of(live) is { } t)
                {
                    foreach (var (name, value) in t) { traits.Add((live, name, value)); }
                }
            }

            foreach (var merged in _graph.MergedIds) { ids.Add((merged, _graph.SurvivorOf(merged)!)); }
            return new ProfileStateSnapshot(ids, identifiers, traits);
        }
    }

    /// <summary>Every identifier with the live profile that owns it, as a copy.</summary>
    public List<(string ProfileId, Identifier Identifier)> Identities()
    {
        lock (_sync) { return _graph.Owners.Select(o => (o.Value, o.Key)).OrderBy(o => o.Value, StringComparer.Ordinal).ToList(); }
    }

    /// <summary>Reads the identifiers a message would link, and the values refused, without changing anything.</summary>
    public (List<Identifier> Identifiers, List<RejectedIdentifier> Rejected) Preview(JsonElement message) => _extractor.Extract(message);

    public (long Profiles, long Identifiers, long Merges) Counts()
    {
        lock (_sync) { return (_graph.ProfileCount, _graph.IdentifierCount, _graph.MergeCount); }
    }

    private ProcessedEvent ProcessOne(long seq, CollectedEvent e, Parsed parsed)
    {
        var message = parsed.Document.RootElement;
        var (identifiers, rejected) = (parsed.Identifiers, parsed.Rejected);
        if (e.Type == MessageType.Alias && e.PreviousId is { } previous) { identifiers.Add(PreviousIdentifier(previous)); }

        var resolution = _resolver.Resolve(_graph, new ResolutionInput(seq, e.Timestamp, e.MessageId, identifiers));
        var changed = rejected.Count + resolution.Decisions.Count + resolution.Merges.Count + resolution.Links.Count > 0 || resolution.Created;
        var changes = changed ? new List<IdentityChange>() : NoChanges;
        var cause = changed ? ResolutionInput.CauseOf(e.MessageId) : "";
        void Add(IdentityChangeKind kind, string? profile, string? other, Identifier? identifier, string? detail, IReadOnlyList<Identifier>? ids = null) =>
            changes.Add(new IdentityChange(seq, changes.Count, kind, profile, other, identifier, e.Timestamp, cause, detail, ids ?? []));

        // Filed under the profile the message went to (null when it went to none), so a profile can list them.
        foreach (var r in rejected) { Add(IdentityChangeKind.Rejected, resolution.ProfileId, null, new Identifier(r.Type, r.RawValue), $"{r.Path}: {r.Reason}"); }
        foreach (var d in resolution.Decisions) { Add(IdentityChangeKind.Dropped, resolution.ProfileId, null, d.Identifier, d.Reason); }
        if (resolution.Created) { Add(IdentityChangeKind.Created, resolution.ProfileId, null, null, null); }
        foreach (var m in resolution.Merges)
        {
            _traits.Merge(m.Survivor, m.Merged);
            _computed.Merge(m.Survivor, m.Merged);
            Add(IdentityChangeKind.Merged, m.Survivor, m.Merged, null, m.Rule, m.Identifiers);
        }

        foreach (var l in resolution.Links) { Add(IdentityChangeKind.Linked, l.ProfileId, null, l.Identifier, null); }

        var traitChanges = new List<TraitChange>();
        if (resolution.ProfileId is { } profileId)
        {
            if (e.Type == MessageType.Identify && message.TryGetProperty("traits"u8, out var traits))
            {
                traitChanges.AddRange(_traits.Apply(profileId, traits, e.Timestamp, seq, e.SourceId));
            }

            if (message.TryGetProperty("context"u8, out var context) && context.ValueKind == JsonValueKind.Object && context.TryGetProperty("traits"u8, out var contextTraits))
            {
                traitChanges.AddRange(_traits.Apply(profileId, contextTraits, e.Timestamp, seq, e.SourceId));
            }

            _computed.Apply(profileId, e, message);
        }

        List<AudienceChange>? audienceChanges = null;
        if (_audiences.Count > 0)
        {
            var now = Clock.GetUtcNow();
            audienceChanges = [];
            foreach (var m in resolution.Merges) { _audiences.Merge(m.Survivor, m.Merged, now, seq, audienceChanges); }
            if (resolution.ProfileId is { } profile)
            {
                _audiences.Observe(profile, seq, e, message);
                var merged = resolution.Merges.Count > 0;
                IReadOnlyList<string> changedTraits = traitChanges.Count == 0 ? [] : [.. traitChanges.Select(t => t.Name)];
                var affected = _audiences.Affected(e.Type == MessageType.Track ? e.Event : null, changedTraits, merged || resolution.Links.Count > 0, merged);
                _audiences.Evaluate(profile, _facts.For(profile), affected, now, seq, cause.Length > 0 ? cause : ResolutionInput.CauseOf(e.MessageId), audienceChanges);
                ScheduleAudiences(profile, now);
            }
        }

        return new ProcessedEvent(seq, resolution.ProfileId, changes, traitChanges, audienceChanges);
    }

    private static readonly List<IdentityChange> NoChanges = [];

    /// <summary>Schedules the next instant time alone can change the profile's memberships (see <see cref="AudienceEngine.Schedule"/>).</summary>
    private void ScheduleAudiences(string profile, DateTimeOffset now) =>
        _audiences.Schedule(profile, now, (_computed, profile, now), static (at, name) => at._computed.NextChange(at.profile, name, at.now));

    // alias names an earlier id without saying its type: a known user id, else an anonymous id.
    private Identifier PreviousIdentifier(string previousId)
    {
        var asUser = new Identifier("user_id", previousId);
        return _graph.OwnerOf(asUser) is not null ? asUser : new Identifier("anonymous_id", previousId);
    }
}
