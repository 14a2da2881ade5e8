using System.Text.Json;
using System.Text.Json.Nodes;
using Microsoft.AspNetCore.Http.HttpResults;
using Tessera.Core.Activation;
using Tessera.Core.Conditions;
using Tessera.Server.Activation;
using Tessera.Server.Hosting;
using Tessera.Storage;
using Tessera.Storage.Activation;

namespace Tessera.Server.Management;

/// <summary>
/// <c>/api/destinations</c>: where audience changes and events are sent (webhook, email), each delivery's log,
/// the dead letters and their replay; <c>/api/profiles/{id}/deliveries</c> and <c>/api/profiles/{id}/consent</c>.
/// Secrets and passwords are written, never read back.
/// </summary>
public static class DestinationsApi
{
    public static RouteGroupBuilder MapDestinationsApi(this RouteGroupBuilder api)
    {
        api.MapGet("/destinations", ListAsync).WithName("ListDestinations");
        api.MapPost("/destinations", CreateAsync).WithName("CreateDestination");
        api.MapGet("/destinations/{id}", GetAsync).WithName("GetDestination");
        api.MapPut("/destinations/{id}", UpdateAsync).WithName("UpdateDestination");
        api.MapDelete("/destinations/{id}", DeleteAsync).WithName("DeleteDestination").WithSummary("Deletes it; its log stays, its pending deliveries are cancelled.");
        api.MapGet("/destinations/{id}/deliveries", DeliveriesAsync).WithName("GetDestinationDeliveries").WithSummary("The delivery log, newest first; ?status= filters.");
        api.MapGet("/destinations/{id}/dead-letters", DeadLettersAsync).WithName("GetDeadLetters").WithSummary("Deliveries that failed every attempt.");
        api.MapPost("/destinations/{id}/dead-letters/replay", ReplayAsync).WithName("ReplayDeadLetters").WithSummary("Sends dead letters again: all, or {\"ids\": [...]}.");
        api.MapPost("/destinations/{id}/run", DestinationRunsApi.RunAsync).WithName("RunDestination").WithSummary("Runs a file destination now; the run is in its delivery log.");
        api.MapGet("/profiles/{id}/deliveries", ProfileDeliveriesAsync).WithName("GetProfileDeliveries");
        api.MapGet("/profiles/{id}/consent", ProfileConsentAsync).WithName("GetProfileConsent").WithSummary("The latest consent preference per category, and the message that stated it.");
        return api;
    }

    public sealed record DestinationAnswer(
        string Id, string Name, string Type, IReadOnlyList<string> Segments, IReadOnlyList<string> Events, IReadOnlyList<PropertyFilter> Where, string? Purpose, FrequencyCap? FrequencyCap, bool Enabled,
        string? Url, bool? SecretSet, IReadOnlyDictionary<string, string>? Headers, BatchingAnswer? Batching,
        SmtpAnswer? Smtp, string? From, string? To, string? Subject, string? Body, bool? Html, DateTimeOffset CreatedAt, DateTimeOffset UpdatedAt,
        string? Directory = null, string? Format = null, ExportSchedule? Schedule = null, IReadOnlyList<string>? Traits = null, int? Keep = null, bool? IncludeChanges = null,
        bool? WriteKeySet = null);

    public sealed record BatchingAnswer(bool Enabled, int MaxSize, int MaxWaitMs);

    public sealed record SmtpAnswer(string Host, int Port, string? Username, bool PasswordSet, string Security);

    public sealed record DeliveryAnswer(
        long Id, string DestinationId, string ProfileId, string Type, long CauseId, string IdempotencyKey, string Status, string? Reason, int Attempts,
        DateTimeOffset? NextAttemptAt, string? LastError, DateTimeOffset CreatedAt, DateTimeOffset UpdatedAt, DateTimeOffset? DeliveredAt, JsonNode? Payload);

    public sealed record DeliveryPageAnswer(IReadOnlyList<DeliveryAnswer> Items, string? NextCursor);

    public sealed record ReplayBody(List<long>? Ids);

    public sealed record ReplayAnswer(int Count, IReadOnlyList<long> Ids);

    public sealed record ConsentAnswer(string ProfileId, IReadOnlyDictionary<string, ConsentEntry> Categories);

    public sealed record ConsentEntry(bool Granted, DateTimeOffset At, long Seq);

    public static async Task<Ok<List<DestinationAnswer>>> ListAsync(ITesseraStore store, CancellationToken cancellationToken) =>
        TypedResults.Ok((await store.ListDestinationsAsync(cancellationToken)).Select(d => Answer(d.Destination)).ToList());

    public static async Task<Results<Ok<DestinationAnswer>, ProblemHttpResult>> GetAsync(string id, ITesseraStore store, CancellationToken cancellationToken) =>
        await store.GetDestinationAsync(id, cancellationToken) is { } d ? TypedResults.Ok(Answer(d.Destination)) : NoSuch(id);

    public static async Task<Results<Created<DestinationAnswer>, ProblemHttpResult>> CreateAsync(
        JsonElement body, ITesseraStore store, ActivationService activation, TimeProvider clock, CancellationToken cancellationToken)
    {
        var id = "dst_" + Guid.CreateVersion7().ToString("N")[..20];
        if (DestinationRequest.Parse(body, id, null, store.Engine, clock.GetUtcNow(), out var destination) is { } problem) { return problem; }
        await store.SaveDestinationAsync(destination!, cancellationToken);
        activation.Forget(id);
        return TypedResults.Created($"/api/destinations/{id}", Answer(destination!));
    }

    public static async Task<Results<Ok<DestinationAnswer>, ProblemHttpResult>> UpdateAsync(
        string id, JsonElement body, ITesseraStore store, ActivationService activation, TimeProvider clock, CancellationToken cancellationToken)
    {
        if (await store.GetDestinationAsync(id, cancellationToken) is not { } existing) { return NoSuch(id); }
        if (DestinationRequest.Parse(body, id, existing.Destination, store.Engine, clock.GetUtcNow(), out var destination) is { } problem) { return problem; }
        await store.SaveDestinationAsync(destination!, cancellationToken);
        activation.Forget(id);
        return TypedResults.Ok(Answer(destination!));
    }

    public static async Task<Results<NoContent, ProblemHttpResult>> DeleteAsync(string id, ITesseraStore store, ActivationService activation, CancellationToken cancellationToken)
    {
        if (!await store.DeleteDestinationAsync(id, cancellationToken)) { return NoSuch(id); }
        activation.Forget(id);
        return TypedResults.NoContent();
    }

    public static async Task<Results<Ok<DeliveryPageAnswer>, ProblemHttpResult>> DeliveriesAsync(
        string id, string? status, int? limit, string? cursor, ITesseraStore store, CancellationToken cancellationToken)
    {
        if (await store.GetDestinationAsync(id, cancellationToken) is null) { return NoSuch(id); }
        if (status is not null && !DeliveryStatus.All.Contains(status)) { return Problems.Field("status", $"'{status}' is not one of {string.Join(", ", DeliveryStatus.All)}"); }
        return await PageAsync(new DeliveryQuery(DestinationId: id, Status: status), limit, cursor, store, cancellationToken);
    }

    public static async Task<Results<Ok<DeliveryPageAnswer>, ProblemHttpResult>> DeadLettersAsync(string id, int? limit, string? cursor, ITesseraStore store, CancellationToken cancellationToken)
    {
        if (await store.GetDestinationAsync(id, cancellationToken) is null) { return NoSuch(id); }
        return await PageAsync(new DeliveryQuery(DestinationId: id, Status: DeliveryStatus.Dead), limit, cursor, store, cancellationToken);
    }

    public static async Task<Results<Ok<ReplayAnswer>, ProblemHttpResult>> ReplayAsync(
        string id, HttpRequest request, ITesseraStore store, ActivationService activation, TimeProvider clock, CancellationToken cancellationToken)
    {
        if (await store.GetDestinationAsync(id, cancellationToken) is null) { return NoSuch(id); }
        List<long>? ids = null;
        if (request.ContentLength is not 0 && request.HasJsonContentType())
        {
            try
            {
                ids = (await request.ReadFromJsonAsync<ReplayBody>(cancellationToken))?.Ids;
            }
            catch (JsonException e)
            {
                return Problems.Field("ids", $"must be an array of delivery ids ({e.Message})");
            }
        }

        var replayed = await store.ReplayDeadLettersAsync(id, ids, clock.GetUtcNow(), cancellationToken);
        if (ids is not null && replayed.Count < ids.Distinct().Count())
        {
            var missing = ids.Except(replayed).First();
            // The ones that were dead letters are replayed; the answer names the first that was not.
            return Problems.Field("ids", $"delivery {missing} is not a dead letter of {id}; {replayed.Count} others were replayed", StatusCodes.Status409Conflict, "Conflict");
        }

        return TypedResults.Ok(new ReplayAnswer(replayed.Count, replayed));
    }

    public static async Task<Results<Ok<DeliveryPageAnswer>, ProblemHttpResult>> ProfileDeliveriesAsync(string id, int? limit, string? cursor, ITesseraStore store, CancellationToken cancellationToken)
    {
        var live = store.Engine.SurvivorOf(id);
        if (live is null || store.Engine.Get(live) is not { } profile) { return Problems.NotFound($"id: no profile '{id}'"); }
        return await PageAsync(new DeliveryQuery(ProfileIds: [profile.Id, .. profile.MergedFrom]), limit, cursor, store, cancellationToken);
    }

    public static async Task<Results<Ok<ConsentAnswer>, ProblemHttpResult>> ProfileConsentAsync(string id, ITesseraStore store, CancellationToken cancellationToken)
    {
        var live = store.Engine.SurvivorOf(id);
        if (live is null || store.Engine.Get(live) is not { } profile) { return Problems.NotFound($"id: no profile '{id}'"); }
        var states = await store.GetConsentAsync([profile.Id, .. profile.MergedFrom], cancellationToken);
        var latest = DeliveryDeriver.LatestByCategory(states);
        return TypedResults.Ok(new ConsentAnswer(profile.Id, latest.OrderBy(l => l.Key, StringComparer.Ordinal).ToDictionary(l => l.Key, l => new ConsentEntry(l.Value.Granted, l.Value.At, l.Value.Seq))));
    }

    private static async Task<Results<Ok<DeliveryPageAnswer>, ProblemHttpResult>> PageAsync(DeliveryQuery query, int? limit, string? cursor, ITesseraStore store, CancellationToken cancellationToken)
    {
        if (limit is < 1 or > 1000) { return Problems.Field("limit", "must be between 1 and 1000"); }
        long? before = null;
        if (cursor is not null)
        {
            if (!long.TryParse(cursor, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var c)) { return Problems.Field("cursor", "is not a cursor this API gave"); }
            before = c;
        }

        var take = limit ?? 100;
        var page = await store.QueryDeliveriesAsync(query with { Before = before, Limit = take }, cancellationToken);
        var next = page.Count == take ? page[^1].Id.ToString(System.Globalization.CultureInfo.InvariantCulture) : null;
        return TypedResults.Ok(new DeliveryPageAnswer([.. page.Select(DeliveryAnswerOf)], next));
    }

    internal static DeliveryAnswer DeliveryAnswerOf(Delivery d) =>
        new(d.Id, d.DestinationId, d.ProfileId, d.Kind, d.CauseId, d.IdempotencyKey, d.Status, d.Reason, d.Attempts, d.NextAttemptAt, d.LastError,
            d.CreatedAt, d.UpdatedAt, d.DeliveredAt, JsonNode.Parse(d.Payload));

    private static DestinationAnswer Answer(Destination d) => new(
        d.Id, d.Name, d.Type, d.Segments, d.Events, d.Where, d.Purpose, d.FrequencyCap, d.Enabled,
        d.Webhook?.Url ?? d.Segment?.Url, d.Webhook is null ? null : true, d.Webhook?.Headers,
        d.Webhook is not null ? Batching(d.Webhook.Batching) : d.Segment is not null ? Batching(d.Segment.Batching) : null,
        d.Email is { } e ? new SmtpAnswer(e.Smtp.Host, e.Smtp.Port, e.Smtp.Username, e.Smtp.Password is not null, e.Smtp.Security) : null,
        d.Email?.From, d.Email?.To, d.Email?.Subject, d.Email?.Body, d.Email?.Html, d.CreatedAt, d.UpdatedAt,
        d.File?.Directory, d.File?.Format, d.File?.Schedule, d.File?.Traits, d.File?.Keep, d.File?.IncludeChanges, d.Segment is null ? null : true);

    private static BatchingAnswer Batching(BatchingSettings? b) => b is { MaxSize: > 1 } ? new BatchingAnswer(true, b.MaxSize, b.MaxWaitMs) : new BatchingAnswer(false, 0, 0);

    private static ProblemHttpResult NoSuch(string id) => Problems.NotFound($"id: no destination '{id}'");
}
