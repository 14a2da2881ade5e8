using System.Text.Json;
using Microsoft.AspNetCore.Http.HttpResults;
using Tessera.Core.Journeys;
using Tessera.Core.Profiles;
using Tessera.Server.Hosting;
using Tessera.Storage.Activation;

namespace Tessera.Server.Journeys;

/// <summary>
/// Reads and checks a journey sent to <c>POST/PUT /api/journeys</c>, at the edge: every problem names its field
/// (<c>steps[2].timeout</c>, <c>entry.where[0].op</c>); what passes is a valid <see cref="Journey"/>. A PUT that
/// changes the definition makes a new version; runs already under way finish on the version they entered with.
/// </summary>
public static class JourneyRequest
{
    private static readonly string[] OwnFields = ["name", "description", "status"];

    public static ProblemHttpResult? Parse(
        JsonElement body, string id, Journey? existing, ProfileEngine engine, IReadOnlyList<StoredDestination> destinations, DateTimeOffset now, out Journey? journey)
    {
        journey = null;
        if (body.ValueKind != JsonValueKind.Object) { return Problems.Field("", "the body must be a JSON object {name, entry, steps, ...}"); }

        string? name = null;
        if (body.TryGetProperty("name", out var n) && n.ValueKind != JsonValueKind.Null)
        {
            if (n.ValueKind != JsonValueKind.String) { return Problems.Field("name", "must be a string"); }
            name = n.GetString()!.Trim();
        }

        if (string.IsNullOrEmpty(name)) { return Problems.Field("name", "is required: what the journey is called"); }
        if (name.Length > 200) { return Problems.Field("name", "must be at most 200 characters"); }

        string? description = null;
        if (body.TryGetProperty("description", out var d) && d.ValueKind != JsonValueKind.Null)
        {
            if (d.ValueKind != JsonValueKind.String || d.GetString()!.Length > 2000) { return Problems.Field("description", "must be a string of at most 2000 characters"); }
            description = d.GetString();
        }

        var status = existing?.Status ?? JourneyStatus.Draft;
        if (body.TryGetProperty("status", out var s) && s.ValueKind != JsonValueKind.Null)
        {
            if (s.ValueKind != JsonValueKind.String || !JourneyStatus.All.Contains(s.GetString()!)) { return Problems.Field("status", $"must be one of {string.Join(", ", JourneyStatus.All)}"); }
            status = s.GetString()!;
            if (status == JourneyStatus.Draft && existing is not null && existing.Status != JourneyStatus.Draft)
            {
                return Problems.Field("status", "a journey that has run cannot become a draft again; pause it instead");
            }
        }

        var references = new References(engine, destinations);
        var definition = JourneyParser.Parse(body, references, OwnFields, out var errors);
        if (definition is null)
        {
            // Every problem found, each under its path; the first names the field, as in every other 400.
            return TypedResults.Problem(
                detail: string.Join("; ", errors.Take(10)) + (errors.Count > 10 ? $" (and {errors.Count - 10} more)" : ""),
                statusCode: StatusCodes.Status400BadRequest,
                title: "Invalid request",
                extensions: new Dictionary<string, object?>
                {
                    ["field"] = errors[0].Path,
                    ["errors"] = errors.GroupBy(e => e.Path).ToDictionary(g => g.Key, g => g.Select(e => e.Message).ToArray()),
                });
        }

        var version = existing is null ? 1
            : JourneyParser.ToJson(existing.Definition).ToJsonString() == JourneyParser.ToJson(definition).ToJsonString() ? existing.Version : existing.Version + 1;
        journey = new Journey(id, name, description, status, version, definition, existing?.CreatedAt ?? now, now);
        return null;
    }

    private sealed class References(ProfileEngine engine, IReadOnlyList<StoredDestination> destinations) : IJourneyReferences
    {
        public bool SegmentExists(string id) => engine.GetAudience(id) is not null;

        public string? DestinationType(string id) => destinations.FirstOrDefault(d => d.Destination.Id == id)?.Destination.Type;

        public bool AudiencesRead(string eventName) => engine.AudienceEventNames.Contains(eventName);
    }
}
