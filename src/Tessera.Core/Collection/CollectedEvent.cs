namespace Tessera.Core.Collection;

/// <summary>
/// One validated message, ready to be stored: the typed columns Tessera reads, beside the raw payload as received.
/// </summary>
/// <param name="MessageId">The client's messageId, or one Tessera generated when the client sent none.</param>
/// <param name="Timestamp">When it happened, corrected for the client's clock skew (Segment's rule).</param>
/// <param name="OriginalTimestamp">The client's own time for the call, uncorrected; null when the client sent none.</param>
/// <param name="Raw">The message's JSON as the client sent it (less a <c>writeKey</c>, which is a secret), as UTF-8 once received (<see cref="RawJson"/>).</param>
public sealed record CollectedEvent(
    string MessageId,
    string SourceId,
    MessageType Type,
    string? Event,
    string? UserId,
    string? AnonymousId,
    string? GroupId,
    string? PreviousId,
    DateTimeOffset Timestamp,
    DateTimeOffset? OriginalTimestamp,
    DateTimeOffset? SentAt,
    DateTimeOffset ReceivedAt,
    RawJson Raw);
