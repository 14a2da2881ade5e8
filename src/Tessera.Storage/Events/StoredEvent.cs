using Tessera.Core.Collection;

namespace Tessera.Storage.Events;

/// <summary>An event as the log holds it: its position (<see cref="Seq"/>), the message, and its profile once resolved.</summary>
public sealed record StoredEvent(long Seq, CollectedEvent Message, string? ProfileId);

/// <summary>One page of events; <see cref="NextCursor"/> is null on the last page.</summary>
public sealed record EventPage(IReadOnlyList<StoredEvent> Items, long? NextCursor);

/// <summary>Counts across the store.</summary>
public sealed record StoreStats(long Events, long Sources, long Profiles, long Identifiers, long Merges, long Segments);
