using System.Collections.Concurrent;
using System.Diagnostics;
using System.Globalization;
using System.Text.Json.Nodes;
using Tessera.Core.Activation;
using Tessera.Server.Exports;
using Tessera.Server.Management;
using Tessera.Storage;
using Tessera.Storage.Activation;
using Tessera.Storage.Audiences;

namespace Tessera.Server.Activation;

/// <summary>
/// Runs a file destination: for each of its audiences, the members as they are now (with the consent its purpose
/// needs), written as one CSV or Parquet file named after the audience and the run's UTC time
/// (<c>pro_users-seg_…-20261202T030000Z.csv</c>), atomically (<see cref="TableFile"/>); with
/// <see cref="FileExportSettings.IncludeChanges"/>, also the entries and exits since the previous run
/// (<c>….changes.csv</c>); then only the newest <see cref="FileExportSettings.Keep"/> files of each audience are kept.
/// The run's record (files, rows, bytes, duration, how far the change log was read) becomes its delivery's payload.
/// One run of a destination at a time in this process.
/// </summary>
public sealed class FileExportChannel(ITesseraStore store, TimeProvider clock)
{
    private const string TimeFormat = "yyyyMMdd'T'HHmmss'Z'";

    /// <summary>Characters <see cref="TimeFormat"/> writes (20260102T030405Z): its quotes write nothing.</summary>
    private static readonly int TimeLength = TimeFormat.Replace("'", "", StringComparison.Ordinal).Length;
    private static readonly string[] ChangeColumns = ["profile_id", "change", "at", "reason", "seq"];
    private readonly ConcurrentDictionary<string, SemaphoreSlim> _running = new(StringComparer.Ordinal);

    /// <summary>The file name of an audience's members (<paramref name="changes"/>: of its entries and exits) for a run at <paramref name="at"/>.</summary>
    public static string FileName(string segmentId, string? segmentName, DateTimeOffset at, string format, bool changes = false) =>
        $"{Prefix(segmentId, segmentName)}{at.UtcDateTime.ToString(TimeFormat, CultureInfo.InvariantCulture)}{(changes ? ".changes" : "")}.{format}";

    public async Task<IReadOnlyList<SendResult>> RunAsync(Destination destination, IReadOnlyList<Delivery> runs, CancellationToken cancellationToken)
    {
        var results = new List<SendResult>(runs.Count);
        var gate = _running.GetOrAdd(destination.Id, _ => new SemaphoreSlim(1, 1));
        foreach (var run in runs)
        {
            await gate.WaitAsync(cancellationToken);
            try
            {
                results.Add(await RunOnceAsync(destination, run, cancellationToken));
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException or StoreException or StoreUnavailableException or DuckDB.NET.Data.DuckDBException)
            {
                results.Add(SendResult.Failed(e.Message));
            }
            finally
            {
                gate.Release();
            }
        }

        return results;
    }

    private async Task<SendResult> RunOnceAsync(Destination destination, Delivery run, CancellationToken cancellationToken)
    {
        var settings = destination.File ?? throw new InvalidOperationException($"destination {destination.Id} has no file settings");
        var started = Stopwatch.GetTimestamp();
        var at = DateTimeOffset.FromUnixTimeMilliseconds(run.CauseId);
        var engine = store.Engine;
        Directory.CreateDirectory(settings.Directory);

        long after = 0, upTo = 0;
        if (settings.IncludeChanges)
        {
            after = await PreviousChangeIdAsync(destination.Id, cancellationToken);
            upTo = await store.LastAudienceChangeIdAsync(cancellationToken);
        }

        var files = new JsonArray();
        long totalRows = 0, totalBytes = 0;
        foreach (var segmentId in destination.Segments)
        {
            if (engine.GetAudience(segmentId) is not { } audience) { return SendResult.Failed($"audience {segmentId} no longer exists; remove it from the destination's segments", permanent: true); }
            var members = engine.Members(segmentId);
            var excluded = 0;
            if (destination.Purpose is { } purpose)
            {
                var consenting = await ConsentingAsync(members, purpose, cancellationToken);
                excluded = members.Count - consenting.Count;
                members = consenting;
            }

            var table = MemberTable.Of(engine, members, settings.Traits);
            var name = FileName(segmentId, audience.Name, at, settings.Format);
            var bytes = await TableFile.WriteAsync(Path.Combine(settings.Directory, name), settings.Format, table.Columns, table.Rows, cancellationToken);
            var file = new JsonObject
            {
                ["segmentId"] = segmentId,
                ["segmentName"] = audience.Name,
                ["file"] = name,
                ["rows"] = table.Rows.Count,
                ["bytes"] = bytes,
            };
            if (destination.Purpose is not null) { file["withoutConsent"] = excluded; }
            totalRows += table.Rows.Count;
            totalBytes += bytes;

            if (settings.IncludeChanges)
            {
                var changes = await ChangesAsync(segmentId, after, upTo, cancellationToken);
                var changesName = FileName(segmentId, audience.Name, at, settings.Format, changes: true);
                var changeBytes = await TableFile.WriteAsync(Path.Combine(settings.Directory, changesName), settings.Format, ChangeColumns, changes, cancellationToken);
                file["changesFile"] = changesName;
                file["changes"] = changes.Count;
                file["changesBytes"] = changeBytes;
                totalBytes += changeBytes;
            }

            files.Add(file);
            if (settings.Keep is { } keep) { Prune(settings.Directory, segmentId, audience.Name, settings.Format, keep); }
        }

        var record = JsonNode.Parse(run.Payload) as JsonObject ?? [];
        record["result"] = new JsonObject
        {
            ["directory"] = settings.Directory,
            ["format"] = settings.Format,
            ["files"] = files,
            ["rows"] = totalRows,
            ["bytes"] = totalBytes,
            ["durationMs"] = (long)Stopwatch.GetElapsedTime(started).TotalMilliseconds,
            ["changeId"] = settings.IncludeChanges ? upTo : null,
            ["finishedAt"] = MessageJson.Iso(clock.GetUtcNow()),
        };
        return SendResult.Produced(record.ToJsonString());
    }

    /// <summary>Where the previous successful run stopped reading the change log; the destination's start before the first.</summary>
    private async Task<long> PreviousChangeIdAsync(string destinationId, CancellationToken cancellationToken)
    {
        var last = await store.QueryDeliveriesAsync(new DeliveryQuery(DestinationId: destinationId, Status: DeliveryStatus.Delivered, Limit: 1), cancellationToken);
        if (last.Count == 1 && JsonNode.Parse(last[0].Payload)?["result"]?["changeId"] is JsonValue v && v.TryGetValue<long>(out var changeId)) { return changeId; }
        return (await store.GetDestinationAsync(destinationId, cancellationToken))?.AfterChangeId ?? 0;
    }

    private async Task<List<string?[]>> ChangesAsync(string segmentId, long after, long upTo, CancellationToken cancellationToken)
    {
        var rows = new List<string?[]>();
        while (after < upTo)
        {
            var page = await store.GetAudienceChangesAsync(new AudienceChangeQuery(AudienceId: segmentId, AfterId: after, Limit: 10_000), cancellationToken);
            foreach (var c in page.Where(c => c.Id <= upTo))
            {
                rows.Add([c.Change.ProfileId, c.Change.Entered ? "entered" : "exited", MessageJson.Iso(c.Change.At), c.Change.Reason, c.Id.ToString(CultureInfo.InvariantCulture)]);
            }

            if (page.Count < 10_000 || page[^1].Id >= upTo) { break; }
            after = page[^1].Id;
        }

        return rows;
    }

    /// <summary>The members who consent to <paramref name="purpose"/>, by the rule every delivery follows (<see cref="DeliveryDeriver.Consents"/>).</summary>
    private async Task<List<string>> ConsentingAsync(List<string> members, string purpose, CancellationToken cancellationToken)
    {
        var engine = store.Engine;
        var states = await store.GetConsentAsync([.. members.SelectMany(m => DeliveryDeriver.Cluster(engine, m)).Distinct(StringComparer.Ordinal)], cancellationToken);
        var byProfile = states.GroupBy(s => s.ProfileId, StringComparer.Ordinal).ToDictionary(g => g.Key, g => g.ToList(), StringComparer.Ordinal);
        return [.. members.Where(m => DeliveryDeriver.Consents(engine, m, purpose, byProfile))];
    }

    /// <summary>Deletes all but the newest <paramref name="keep"/> member files (and, apart, changes files) of the audience.</summary>
    private static void Prune(string directory, string segmentId, string? segmentName, string format, int keep)
    {
        var prefix = Prefix(segmentId, segmentName);
        foreach (var suffix in new[] { $".{format}", $".changes.{format}" })
        {
            var old = Directory.EnumerateFiles(directory, $"{prefix}*{suffix}")
                .Select(Path.GetFileName)
                .Where(n => n!.Length == prefix.Length + TimeLength + suffix.Length)
                .Order(StringComparer.Ordinal)
                .SkipLast(keep);
            foreach (var name in old) { File.Delete(Path.Combine(directory, name!)); }
        }
    }

    private static string Prefix(string segmentId, string? segmentName) => $"{SegmentMessages.AudienceKey(segmentName, segmentId)}-{segmentId}-";
}
