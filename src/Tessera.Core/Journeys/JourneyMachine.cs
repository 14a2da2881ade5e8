using System.Globalization;
using Tessera.Core.Audiences;

namespace Tessera.Core.Journeys;

/// <summary>
/// The rules of moving through a journey, with no I/O: each method takes a position and what happened (an entry,
/// an awaited event, a due time, an exit trigger) and returns the new position, adding history lines and sends to
/// <see cref="Steps"/>. When <c>run</c> is false (the journey is paused) a position is moved to its next step but
/// that step is not run: it waits, due at once, for the journey to be enabled.
/// </summary>
/// <param name="evaluate">Evaluates a branch condition for a profile, as it is now.</param>
public sealed class JourneyMachine(Func<AudienceCondition, string, bool> evaluate)
{
    /// <summary>What the calls since the last <see cref="Take"/> produced.</summary>
    public sealed class Steps
    {
        public List<JourneyHistoryEntry> History { get; } = [];

        public List<JourneySend> Sends { get; } = [];
    }

    private Steps _out = new();

    /// <summary>Returns what was produced and starts afresh.</summary>
    public Steps Take()
    {
        var taken = _out;
        _out = new Steps();
        return taken;
    }

    /// <summary>A new run at the journey's first step. <paramref name="afterSeq"/>: the log position of the entry (an event wait counts only later events).</summary>
    public JourneyPosition Enter(long id, Journey journey, string profileId, int run, DateTimeOffset now, long afterSeq, string context, string cause, bool runNow)
    {
        var first = journey.Definition.Steps[0];
        var position = new JourneyPosition(id, journey.Id, profileId, run, journey.Version, first.Id, PositionState.Active, false, now, null, afterSeq, now, now, now, null, null, context);
        Log(position, "entered", cause, now);
        return runNow ? Advance(position, journey.Definition, now, afterSeq) : position;
    }

    /// <summary>Runs the position's step and the ones after it until a wait or the end.</summary>
    public JourneyPosition Advance(JourneyPosition position, JourneyDefinition definition, DateTimeOffset now, long afterSeq)
    {
        for (var guard = 0; guard <= definition.Steps.Count && position.State == PositionState.Active && !position.Waiting; guard++)
        {
            if (definition.Step(position.StepId) is not { } step) { return Exit(position, $"step '{position.StepId}' no longer exists", now); }
            switch (step)
            {
                case WaitStep w:
                    {
                        var due = now + w.Period;
                        position = position with { Waiting = true, DueAt = due, WaitEvent = null, UpdatedAt = now };
                        Log(position, "waiting", $"{w.Duration}, until {Iso(due)}", now);
                        break;
                    }

                case WaitForEventStep w:
                    {
                        var due = now + w.Period;
                        position = position with { Waiting = true, DueAt = due, WaitEvent = w.Event, WaitAfterSeq = afterSeq, UpdatedAt = now };
                        Log(position, "waiting", $"for {w.Event}, until {Iso(due)}", now);
                        break;
                    }

                case BranchStep b:
                    {
                        var holds = evaluate(b.Condition, position.ProfileId);
                        Log(position, "branched", holds ? $"then → {b.Then}" : $"else → {b.Else}", now);
                        position = Move(position, holds ? b.Then : b.Else, now);
                        break;
                    }

                case SendStep s:
                    {
                        var send = new JourneySend(position, s, now);
                        _out.Sends.Add(send);
                        Log(position, "sent", $"to {s.DestinationId} ({send.IdempotencyKey})", now);
                        position = Move(position, s.Next, now);
                        break;
                    }

                case ExitStep x:
                    position = Complete(position, x.Reason ?? $"reached exit step {x.Id}", now);
                    break;

                default:
                    throw new InvalidOperationException($"unknown step type {step.GetType().Name}");
            }
        }

        return position;
    }

    /// <summary>The position's due time came: a wait ends, an event wait times out, or a step left pending (paused) runs.</summary>
    public JourneyPosition Due(JourneyPosition position, JourneyDefinition definition, DateTimeOffset now, long afterSeq)
    {
        if (!position.Waiting) { return Advance(position, definition, now, afterSeq); }
        switch (definition.Step(position.StepId))
        {
            case WaitStep w:
                Log(position, "waited", w.Duration, now);
                return Advance(Move(position, w.Next, now), definition, now, afterSeq);
            case WaitForEventStep w:
                Log(position, "timed_out", $"no {w.Event} within {w.Timeout}", now);
                return Advance(Move(position, w.OnTimeout, now), definition, now, afterSeq);
            default:
                return Exit(position, $"step '{position.StepId}' no longer exists", now);
        }
    }

    /// <summary>The awaited event arrived (the caller checked name, filters and log position).</summary>
    public JourneyPosition EventArrived(JourneyPosition position, WaitForEventStep step, JourneyDefinition definition, string messageId, long seq, DateTimeOffset now, bool runNow)
    {
        Log(position, "event", $"{step.Event} (message {messageId})", now);
        var moved = Move(position, step.OnEvent, now);
        return runNow ? Advance(moved, definition, now, seq) : moved;
    }

    /// <summary>Takes the profile out of the journey wherever it is.</summary>
    public JourneyPosition Exit(JourneyPosition position, string reason, DateTimeOffset now)
    {
        var ended = position with { State = PositionState.Exited, Waiting = false, DueAt = null, WaitEvent = null, Reason = reason, EndedAt = now, UpdatedAt = now };
        Log(ended, "exited", reason, now);
        return ended;
    }

    /// <summary>True when an event wait at <paramref name="position"/> would take this event (name and log position; the caller checks filters).</summary>
    public static bool Awaits(JourneyPosition position, string eventName, long seq) =>
        position.State == PositionState.Active && position.Waiting && position.WaitEvent == eventName && seq > position.WaitAfterSeq;

    private JourneyPosition Complete(JourneyPosition position, string reason, DateTimeOffset now)
    {
        var ended = position with { State = PositionState.Completed, Waiting = false, DueAt = null, WaitEvent = null, Reason = reason, EndedAt = now, UpdatedAt = now };
        Log(ended, "completed", reason, now);
        return ended;
    }

    private JourneyPosition Move(JourneyPosition position, string target, DateTimeOffset now) =>
        target == JourneyStep.End
            ? Complete(position, "reached the end", now)
            : position with { StepId = target, Waiting = false, DueAt = now, WaitEvent = null, StepEnteredAt = now, UpdatedAt = now };

    private void Log(JourneyPosition position, string action, string? detail, DateTimeOffset at) =>
        _out.History.Add(new JourneyHistoryEntry(position.Id, position.JourneyId, position.ProfileId, position.Run, position.StepId, action, detail, at));

    private static string Iso(DateTimeOffset at) => at.UtcDateTime.ToString("yyyy-MM-dd'T'HH:mm:ss'Z'", CultureInfo.InvariantCulture);
}
