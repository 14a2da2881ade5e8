using System.Text.Json;
using Microsoft.AspNetCore.Http.HttpResults;
using Tessera.Core.Activation;
using Tessera.Core.Conditions;
using Tessera.Server.Hosting;

namespace Tessera.Server.Activation;

public static partial class DestinationRequest
{
    /// <summary>
    /// <c>{"directory", "format", "schedule": {"every", "at"}, "traits", "keep", "includeChanges"}</c>. The directory
    /// must be absolute; it is created when missing and must be writable by Tessera (checked with a probe file).
    /// </summary>
    private static ProblemHttpResult? ParseFile(JsonElement body, out FileExportSettings? file)
    {
        file = null;
        if (String(body, "directory", out var directory) is { } directoryProblem) { return directoryProblem; }
        if (string.IsNullOrWhiteSpace(directory)) { return Problems.Field("directory", "is required: the absolute path of the directory the files are written to"); }
        if (!Path.IsPathFullyQualified(directory)) { return Problems.Field("directory", $"'{directory}' is not an absolute path"); }
        if (WritableProblem(directory) is { } unwritable) { return Problems.Field("directory", unwritable); }

        if (String(body, "format", out var format) is { } formatProblem) { return formatProblem; }
        format = format?.ToLowerInvariant() ?? ExportFormats.Csv;
        if (!ExportFormats.All.Contains(format)) { return Problems.Field("format", $"'{format}' is not one of {string.Join(", ", ExportFormats.All)}"); }

        if (Schedule(body, out var schedule) is { } scheduleProblem) { return scheduleProblem; }
        if (Strings(body, "traits", out var traits) is { } traitsProblem) { return traitsProblem; }

        int? keep = null;
        if (body.TryGetProperty("keep", out var k) && k.ValueKind != JsonValueKind.Null)
        {
            if (Int(body, "keep", "keep", 1, 100_000, 0, out var n) is { } keepProblem) { return keepProblem; }
            keep = n;
        }

        var changes = false;
        if (body.TryGetProperty("includeChanges", out var c) && c.ValueKind != JsonValueKind.Null)
        {
            if (c.ValueKind is not (JsonValueKind.True or JsonValueKind.False)) { return Problems.Field("includeChanges", "must be true or false"); }
            changes = c.GetBoolean();
        }

        file = new FileExportSettings(Path.GetFullPath(directory), format, schedule!, traits, keep, changes);
        return null;
    }

    /// <summary><c>schedule</c>: <c>{"every": "1h"}</c>, <c>{"at": "03:00"}</c> or <c>{"at": ["03:00", "15:00"]}</c>, or both; default every day at 00:00 UTC.</summary>
    private static ProblemHttpResult? Schedule(JsonElement body, out ExportSchedule? schedule)
    {
        schedule = null;
        if (!body.TryGetProperty("schedule", out var s) || s.ValueKind == JsonValueKind.Null)
        {
            schedule = new ExportSchedule("1d", []);
            return null;
        }

        if (s.ValueKind != JsonValueKind.Object) { return Problems.Field("schedule", "must be an object {every, at}, e.g. {\"every\": \"1h\"} or {\"at\": \"03:00\"}"); }
        if (String(s, "every", out var every, "schedule.every") is { } everyProblem) { return everyProblem; }
        if (every is not null)
        {
            if (!Duration.TryParse(every, out var interval)) { return Problems.Field("schedule.every", $"'{every}' is not a duration such as 15m, 1h or 1d"); }
            if (interval < ExportSchedule.MinInterval) { return Problems.Field("schedule.every", "must be at least 1s"); }
            if (interval > TimeSpan.FromDays(366)) { return Problems.Field("schedule.every", "must be at most 366d"); }
        }

        var at = new List<string>();
        if (s.TryGetProperty("at", out var a) && a.ValueKind != JsonValueKind.Null)
        {
            var items = a.ValueKind == JsonValueKind.Array ? [.. a.EnumerateArray()] : new List<JsonElement> { a };
            for (var i = 0; i < items.Count; i++)
            {
                var field = a.ValueKind == JsonValueKind.Array ? $"schedule.at[{i}]" : "schedule.at";
                var text = items[i].ValueKind == JsonValueKind.String ? items[i].GetString() : null;
                if (!ExportSchedule.TryParseTime(text, out _)) { return Problems.Field(field, $"must be a UTC time of day as HH:mm, e.g. \"03:00\""); }
                if (!at.Contains(text!, StringComparer.Ordinal)) { at.Add(text!); }
            }
        }

        if (every is null && at.Count == 0) { return Problems.Field("schedule", "needs every (an interval such as 1h) or at (UTC times of day such as \"03:00\"), or both"); }
        schedule = new ExportSchedule(every, at);
        return null;
    }

    /// <summary>Null when Tessera can create files in <paramref name="directory"/> (creating it if needed); otherwise why not.</summary>
    private static string? WritableProblem(string directory)
    {
        try
        {
            Directory.CreateDirectory(directory);
            var probe = Path.Combine(directory, $".tessera-probe-{Guid.NewGuid():N}");
            File.WriteAllBytes(probe, []);
            File.Delete(probe);
            return null;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or NotSupportedException or ArgumentException)
        {
            return $"'{directory}' cannot be written: {e.Message}";
        }
    }
}
