namespace Tessera.Core.Audiences;

/// <summary>
/// What can change an audience's membership for one profile: a track event of one of <see cref="Events"/>, a change
/// of one of <see cref="Traits"/>, a new identifier of one of <see cref="IdentifierTypes"/>, or, when
/// <see cref="TimeDependent"/>, time passing. Referenced audiences' dependencies are included.
/// </summary>
public sealed class AudienceDependencies
{
    public HashSet<string> Events { get; } = new(StringComparer.Ordinal);

    public HashSet<string> Traits { get; } = new(StringComparer.Ordinal);

    public HashSet<string> IdentifierTypes { get; } = new(StringComparer.Ordinal);

    public HashSet<string> Computed { get; } = new(StringComparer.Ordinal);

    public bool TimeDependent { get; private set; }

    /// <summary>The dependencies of <paramref name="definition"/>; <paramref name="computedEvent"/> names the event a computed trait reads and whether it is windowed.</summary>
    public static AudienceDependencies Of(AudienceCondition definition, Func<string, AudienceCondition?> segments, Func<string, (string Event, bool Windowed)?> computedEvent)
    {
        var deps = new AudienceDependencies();
        var seen = new HashSet<string>(StringComparer.Ordinal);
        void Visit(AudienceCondition condition) => AudienceDefinition.Walk(condition, node =>
        {
            switch (node)
            {
                case TraitCondition t: deps.Traits.Add(t.Trait); break;
                case IdentifierCondition i: deps.IdentifierTypes.Add(i.Type); break;
                case ComputedCondition c:
                    deps.Computed.Add(c.Name);
                    if (computedEvent(c.Name) is { } ce)
                    {
                        deps.Events.Add(ce.Event);
                        deps.TimeDependent |= ce.Windowed;
                    }

                    break;
                case EventCondition e:
                    deps.Events.Add(e.Event);
                    deps.TimeDependent |= e.Window != TimeWindow.AllTime;
                    break;
                case SequenceCondition s: foreach (var step in s.Steps) { deps.Events.Add(step.Event); } break;
                case SegmentReference r:
                    if (seen.Add(r.SegmentId) && segments(r.SegmentId) is { } referenced) { Visit(referenced); }
                    break;
                default: break;
            }
        });
        Visit(definition);
        return deps;
    }
}
