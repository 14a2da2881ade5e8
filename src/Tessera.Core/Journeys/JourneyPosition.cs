using System.Security.Cryptography;
using System.Text;

namespace Tessera.Core.Journeys;

/// <summary>
/// Where one run of a profile through a journey stands. A run is one entry: <see cref="Run"/> counts the profile's
/// entries into the journey (1, 2, ... when re-entry is allowed). While <see cref="Waiting"/>, the profile sits in a
/// wait at <see cref="StepId"/> until <see cref="DueAt"/> (the wait's end or the time-out) or, for an event wait,
/// until it does <see cref="WaitEvent"/> after log position <see cref="WaitAfterSeq"/>. Not waiting, it is about to
/// run <see cref="StepId"/> (due at once; it sits there only while the journey is paused).
/// </summary>
/// <param name="Context">The entry as JSON: the event that started the run, or the audience entered (templates and payloads read it).</param>
public sealed record JourneyPosition(
    long Id, string JourneyId, string ProfileId, int Run, int Version, string StepId, string State, bool Waiting, DateTimeOffset? DueAt, string? WaitEvent,
    long WaitAfterSeq, DateTimeOffset EnteredAt, DateTimeOffset StepEnteredAt, DateTimeOffset UpdatedAt, DateTimeOffset? EndedAt, string? Reason, string Context);

/// <summary>The states of a run.</summary>
public static class PositionState
{
    public const string Active = "active";

    /// <summary>Reached an exit step or went past the last step.</summary>
    public const string Completed = "completed";

    /// <summary>Taken out early: an exit trigger, the journey deleted, its step gone; <see cref="JourneyPosition.Reason"/> says which.</summary>
    public const string Exited = "exited";

    public static readonly IReadOnlyList<string> All = [Active, Completed, Exited];
}

/// <summary>One line of a run's history: what happened at which step, and when.</summary>
/// <param name="Action"><c>entered</c>, <c>waiting</c>, <c>event</c>, <c>timed_out</c>, <c>waited</c>, <c>branched</c>, <c>sent</c>, <c>completed</c>, <c>exited</c>.</param>
public sealed record JourneyHistoryEntry(long PositionId, string JourneyId, string ProfileId, int Run, string StepId, string Action, string? Detail, DateTimeOffset At);

/// <summary>A send step reached: what the outbox gets (the activation service builds the payload).</summary>
public sealed record JourneySend(JourneyPosition Position, SendStep Step, DateTimeOffset At)
{
    public string IdempotencyKey => JourneyKeys.For(Position.JourneyId, Position.ProfileId, Position.Run, Step.Id);
}

/// <summary>Idempotency keys of journey sends.</summary>
public static class JourneyKeys
{
    /// <summary>One key per journey, profile, run and step: a step replayed after a crash produces the same key, a new run a new one.</summary>
    public static string For(string journeyId, string profileId, int run, string stepId)
    {
        var hash = SHA256.HashData(Encoding.UTF8.GetBytes($"journey\n{journeyId}\n{profileId}\n{run}\n{stepId}"));
        return "idem_" + Convert.ToHexStringLower(hash, 0, 16);
    }
}
