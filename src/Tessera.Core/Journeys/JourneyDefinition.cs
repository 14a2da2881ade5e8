using Tessera.Core.Audiences;
using Tessera.Core.Conditions;

namespace Tessera.Core.Journeys;

/// <summary>
/// What a journey does, as its author wrote it (checked by <see cref="JourneyParser"/>): who enters, whether they may
/// enter again, what makes them leave early, and the steps. The first step is where a profile starts; a step's
/// next step is the one it names, or the one after it in the list; past the last step the run is completed.
/// </summary>
public sealed record JourneyDefinition(JourneyEntry Entry, ReentryPolicy Reentry, IReadOnlyList<ExitTrigger> Exit, IReadOnlyList<JourneyStep> Steps)
{
    /// <summary>The step with this id, or null (for <see cref="JourneyStep.End"/> and steps a later version removed).</summary>
    public JourneyStep? Step(string id)
    {
        foreach (var s in Steps)
        {
            if (s.Id == id) { return s; }
        }

        return null;
    }

    /// <summary>Where a step goes when it names no next step: the step after it, or the end.</summary>
    public string Following(JourneyStep step)
    {
        for (var i = 0; i < Steps.Count - 1; i++)
        {
            if (Steps[i].Id == step.Id) { return Steps[i + 1].Id; }
        }

        return JourneyStep.End;
    }
}

/// <summary>
/// Who enters: a profile entering the audience <see cref="SegmentId"/>, or a profile doing the track event
/// <see cref="Event"/> matching every filter in <see cref="Where"/>. Exactly one of the two is set.
/// </summary>
public sealed record JourneyEntry(string? SegmentId, string? Event, IReadOnlyList<PropertyFilter> Where);

/// <summary>
/// Whether a profile whose run ended may enter again: never (the default), always, or once <see cref="After"/> has
/// passed since its previous entry. A profile is never in one journey twice at the same time.
/// </summary>
public sealed record ReentryPolicy(bool Allowed, string? After)
{
    public static readonly ReentryPolicy Never = new(false, null);

    public TimeSpan? Period => After is { } text && Duration.TryParse(text, out var period) ? period : null;
}

/// <summary>
/// What takes a profile out of the journey wherever it is: doing the track event <see cref="Event"/> (matching
/// <see cref="Where"/>), entering the audience <see cref="EnteredSegment"/>, or leaving <see cref="LeftSegment"/>.
/// Exactly one of the three is set.
/// </summary>
public sealed record ExitTrigger(string? Event, IReadOnlyList<PropertyFilter> Where, string? EnteredSegment, string? LeftSegment)
{
    public string Describe() => Event is not null ? $"did {Event}" : EnteredSegment is not null ? $"entered audience {EnteredSegment}" : $"left audience {LeftSegment}";
}

/// <summary>One step of a journey; <see cref="Id"/> is unique within the journey and names it in positions and history.</summary>
public abstract record JourneyStep(string Id)
{
    /// <summary>The target that ends the run (completed) instead of naming a step.</summary>
    public const string End = "exit";

    /// <summary>The type name written in the JSON (<c>wait</c>, <c>wait_for_event</c>, <c>branch</c>, <c>send</c>, <c>exit</c>).</summary>
    public abstract string Type { get; }

    /// <summary>The step ids (or <see cref="End"/>) this step can go to, with the JSON field that names each.</summary>
    public abstract IEnumerable<(string Field, string Target)> Targets { get; }
}

/// <summary>Waits <see cref="Duration"/> from the moment the profile reached the step, then goes to <see cref="Next"/>.</summary>
public sealed record WaitStep(string Id, string Duration, string Next) : JourneyStep(Id)
{
    public override string Type => "wait";

    public TimeSpan Period => Conditions.Duration.TryParse(Duration, out var d) ? d : throw new FormatException($"'{Duration}' is not a duration");

    public override IEnumerable<(string, string)> Targets => [("next", Next)];
}

/// <summary>
/// Waits until the profile does <see cref="Event"/> (matching <see cref="Where"/>) after reaching the step, going to
/// <see cref="OnEvent"/>; if <see cref="Timeout"/> passes first, goes to <see cref="OnTimeout"/>.
/// </summary>
public sealed record WaitForEventStep(string Id, string Event, IReadOnlyList<PropertyFilter> Where, string Timeout, string OnEvent, string OnTimeout) : JourneyStep(Id)
{
    public override string Type => "wait_for_event";

    public TimeSpan Period => Duration.TryParse(Timeout, out var d) ? d : throw new FormatException($"'{Timeout}' is not a duration");

    public override IEnumerable<(string, string)> Targets => [("onEvent", OnEvent), ("onTimeout", OnTimeout)];
}

/// <summary>Evaluates <see cref="Condition"/> (the audience language) on the profile as it is when it reaches the step.</summary>
public sealed record BranchStep(string Id, AudienceCondition Condition, string Then, string Else) : JourneyStep(Id)
{
    public override string Type => "branch";

    public override IEnumerable<(string, string)> Targets => [("then", Then), ("else", Else)];
}

/// <summary>Sends to destination <see cref="DestinationId"/> through the outbox, then goes on to <see cref="Next"/> at once.</summary>
public sealed record SendStep(string Id, string DestinationId, string Next) : JourneyStep(Id)
{
    public override string Type => "send";

    public override IEnumerable<(string, string)> Targets => [("next", Next)];
}

/// <summary>Ends the run (completed), with <see cref="Reason"/> in the history.</summary>
public sealed record ExitStep(string Id, string? Reason) : JourneyStep(Id)
{
    public override string Type => "exit";

    public override IEnumerable<(string, string)> Targets => [];
}
