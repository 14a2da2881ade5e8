using System.Security.Cryptography;
using System.Text;

namespace Tessera.Storage.Activation;

/// <summary>The states of a delivery; <c>dead</c> is the dead-letter list.</summary>
public static class DeliveryStatus
{
    /// <summary>Waiting for its first or next attempt.</summary>
    public const string Pending = "pending";
    public const string Delivered = "delivered";
    /// <summary>Not sent on purpose (no consent, no address); never retried.</summary>
    public const string Skipped = "skipped";
    /// <summary>Every attempt failed (or the receiver refused it for good); waits for a replay.</summary>
    public const string Dead = "dead";
    /// <summary>Its destination was deleted before it was sent.</summary>
    public const string Cancelled = "cancelled";

    public static readonly IReadOnlyList<string> All = [Pending, Delivered, Skipped, Dead, Cancelled];
}

/// <summary>What caused a delivery: the contract's <c>type</c> field.</summary>
public static class DeliveryKind
{
    public const string AudienceEntered = "audience_entered";
    public const string AudienceExited = "audience_exited";
    public const string Event = "event";
    /// <summary>A run of a file destination (scheduled or asked for); its cause id is the run's time in Unix milliseconds.</summary>
    public const string FileExport = "file_export";
}

/// <summary>
/// A delivery to be written to the outbox. <see cref="CauseId"/> is the audience change id, or the event's seq
/// (<see cref="Kind"/> says which); with the destination it determines <see cref="IdempotencyKey"/>, so deriving
/// the same cause twice yields the same key.
/// </summary>
public sealed record NewDelivery(
    string DestinationId, string ProfileId, string Kind, long CauseId, string IdempotencyKey, string Payload, string Status, string? Reason, DateTimeOffset CreatedAt);

/// <summary>One row of the outbox and delivery log.</summary>
/// <param name="Payload">The JSON object sent for this delivery (a webhook body, or the item of a batch; for email, the rendered message).</param>
/// <param name="Reason">Why it was skipped or dead-lettered, in words.</param>
public sealed record Delivery(
    long Id, string DestinationId, string ProfileId, string Kind, long CauseId, string IdempotencyKey, string Payload, string Status, string? Reason,
    int Attempts, DateTimeOffset? NextAttemptAt, string? LastError, DateTimeOffset CreatedAt, DateTimeOffset UpdatedAt, DateTimeOffset? DeliveredAt);

/// <summary>
/// What became of a claimed delivery: its new <see cref="Status"/> (<c>pending</c> again with
/// <see cref="NextAttemptAt"/> after a failed attempt, <c>delivered</c>, <c>dead</c>, <c>cancelled</c>);
/// <see cref="Attempted"/> when a request was made (it counts as an attempt).
/// </summary>
/// <param name="IdempotencyKey">Checked with the id, so an outcome can never land on another delivery.</param>
/// <param name="Payload">Replaces the stored payload when set: a file export's record of what it wrote.</param>
public sealed record DeliveryOutcome(long Id, string IdempotencyKey, string Status, bool Attempted, string? Error, DateTimeOffset? NextAttemptAt, DateTimeOffset At, string? Payload = null);

/// <summary>Who claims deliveries and until when: another process may take over a claim once it has expired.</summary>
public sealed record DeliveryClaim(string Owner, DateTimeOffset Now, DateTimeOffset Until);

/// <summary>Which deliveries to list, newest first; <see cref="Before"/> pages backwards.</summary>
public sealed record DeliveryQuery(string? DestinationId = null, IReadOnlyCollection<string>? ProfileIds = null, string? Status = null, long? Before = null, int Limit = 100);

/// <summary>How far activation has read the audience change log and the event log.</summary>
public sealed record ActivationCursor(long ChangeId, long Seq);

/// <summary>A destination as stored, with where in the logs it started (nothing before is sent to it).</summary>
public sealed record StoredDestination(Core.Activation.Destination Destination, long AfterChangeId, long AfterSeq);

/// <summary>Idempotency keys of deliveries.</summary>
public static class DeliveryKeys
{
    /// <summary>
    /// The key a receiver deduplicates on: the same for the same destination and cause, whoever derives it and
    /// however often it is sent; opaque, so it reveals nothing of Tessera's log.
    /// </summary>
    public static string For(string destinationId, string kind, long causeId)
    {
        var hash = SHA256.HashData(Encoding.UTF8.GetBytes($"{destinationId}\n{kind}\n{causeId}"));
        return "idem_" + Convert.ToHexStringLower(hash, 0, 16);
    }

}
