using System.Globalization;
using Microsoft.AspNetCore.Http.HttpResults;
using Tessera.Core.Collection;
using Tessera.Server.Hosting;
using Tessera.Storage.Events;
using Tessera.Storage.Profiles;

namespace Tessera.Server.Management;

/// <summary><c>GET /api/events</c>, <c>GET /api/stats</c>: reading back what was collected.</summary>
public static class EventsApi
{
    public const int MaxLimit = 1000;

    public static RouteGroupBuilder MapEventsApi(this RouteGroupBuilder api)
    {
        api.MapGet("/events", ListEventsAsync).WithName("ListEvents").WithSummary("Events, newest first, with filters and a cursor.");
        api.MapGet("/stats", GetStatsAsync).WithName("GetStats").WithSummary("Counts across the store.");
        return api;
    }

    public sealed record EventListQuery(int? Limit, string? Cursor, string? Type, string? Event, string? UserId, string? AnonymousId, string? ProfileId, string? SourceId);

    public static async Task<Results<Ok<EventListAnswer>, ProblemHttpResult>> ListEventsAsync(
        [AsParameters] EventListQuery q, IEventStore store, IProfileStore profiles, CancellationToken cancellationToken)
    {
        IReadOnlyList<string>? profileIds = null;
        if (q.ProfileId is { Length: > 0 } profileId) { profileIds = ProfilesApi.StoredIdsOf(profiles.Engine, profileId); }
        return await ListAsync(q, profileIds, store, cancellationToken);
    }

    /// <summary>The event list, for <c>/api/events</c> and <c>/api/profiles/{id}/events</c> alike.</summary>
    public static async Task<Results<Ok<EventListAnswer>, ProblemHttpResult>> ListAsync(
        EventListQuery q, IReadOnlyList<string>? profileIds, IEventStore store, CancellationToken cancellationToken)
    {
        var limit = q.Limit ?? 50;
        if (limit is < 1 or > MaxLimit) { return Problems.Field("limit", $"must be between 1 and {MaxLimit}"); }
        long? before = null;
        if (q.Cursor is { Length: > 0 })
        {
            if (!long.TryParse(q.Cursor, NumberStyles.None, CultureInfo.InvariantCulture, out var cursor)) { return Problems.Field("cursor", "is not a cursor this API returned"); }
            before = cursor;
        }

        MessageType? type = null;
        if (q.Type is { Length: > 0 })
        {
            if (!MessageTypes.TryParse(q.Type, out var parsed)) { return Problems.Field("type", "must be one of identify, track, page, screen, group, alias"); }
            type = parsed;
        }

        var page = await store.QueryAsync(new EventQuery(limit, before, type, q.Event, q.UserId, q.AnonymousId, profileIds, q.SourceId), cancellationToken);
        return TypedResults.Ok(new EventListAnswer(
            page.Items.Select(MessageJson.From).ToList(),
            page.NextCursor?.ToString(CultureInfo.InvariantCulture)));
    }

    public sealed record EventListAnswer(IReadOnlyList<System.Text.Json.Nodes.JsonObject> Items, string? NextCursor);

    public static async Task<Ok<StoreStats>> GetStatsAsync(IEventStore store, CancellationToken cancellationToken) =>
        TypedResults.Ok(await store.GetStatsAsync(cancellationToken));
}
