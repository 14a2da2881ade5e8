using Tessera.Core.Collection;

namespace Tessera.Storage.Events;

/// <summary>
/// A filter over the event log. <see cref="Before"/> is the cursor: only events older than it. <see cref="ProfileIds"/>
/// matches events stored under any of the ids (a profile and the ids merged into it).
/// </summary>
public sealed record EventQuery(
    int Limit = 50,
    long? Before = null,
    MessageType? Type = null,
    string? Event = null,
    string? UserId = null,
    string? AnonymousId = null,
    IReadOnlyList<string>? ProfileIds = null,
    string? SourceId = null);
