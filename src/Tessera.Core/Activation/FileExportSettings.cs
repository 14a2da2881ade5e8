using Tessera.Core.Conditions;

namespace Tessera.Core.Activation;

/// <summary>
/// Exports the members of a destination's audiences as files in <see cref="Directory"/> on a schedule: one file per
/// audience per run, written under a temporary name and renamed when complete, so a reader never sees half a file.
/// </summary>
/// <param name="Format"><c>csv</c> or <c>parquet</c>.</param>
/// <param name="Schedule">When runs happen (an interval, daily times, or both).</param>
/// <param name="Traits">The traits (or computed traits) to write as columns, in this order; empty: all of them.</param>
/// <param name="Keep">How many files per audience (and of its changes) to keep, newest first; null keeps every file.</param>
/// <param name="IncludeChanges">Also write the audience's entries and exits since the previous export, as a second file.</param>
public sealed record FileExportSettings(string Directory, string Format, ExportSchedule Schedule, IReadOnlyList<string> Traits, int? Keep, bool IncludeChanges);

/// <summary>
/// When a file destination runs: every <see cref="Every"/> (aligned to UTC: <c>1h</c> runs on the hour, <c>15m</c> at :00,
/// :15, :30 and :45), and/or each day at the UTC times in <see cref="At"/> (<c>HH:mm</c>).
/// </summary>
public sealed record ExportSchedule(string? Every, IReadOnlyList<string> At)
{
    /// <summary>The shortest interval accepted. Runs never overlap (a slot that comes while a run is pending is skipped), so a short one cannot pile runs up.</summary>
    public static readonly TimeSpan MinInterval = TimeSpan.FromSeconds(1);

    /// <summary>The latest scheduled instant at or before <paramref name="now"/>; null when the schedule has none.</summary>
    public DateTimeOffset? LatestAtOrBefore(DateTimeOffset now)
    {
        DateTimeOffset? latest = null;
        var utc = now.ToUniversalTime();
        if (Every is not null && Duration.TryParse(Every, out var every))
        {
            latest = new DateTimeOffset(utc.UtcTicks - (utc.UtcTicks % every.Ticks), TimeSpan.Zero);
        }

        foreach (var time in Times())
        {
            var today = new DateTimeOffset(utc.Date, TimeSpan.Zero) + time;
            var slot = today <= utc ? today : today.AddDays(-1);
            if (latest is null || slot > latest) { latest = slot; }
        }

        return latest;
    }

    /// <summary>True when <paramref name="text"/> is a UTC time of day as <c>HH:mm</c>.</summary>
    public static bool TryParseTime(string? text, out TimeSpan time) =>
        TimeSpan.TryParseExact(text, @"hh\:mm", System.Globalization.CultureInfo.InvariantCulture, out time) && time < TimeSpan.FromDays(1) && text!.Length == 5;

    private IEnumerable<TimeSpan> Times() => At.Select(a => TryParseTime(a, out var t) ? t : (TimeSpan?)null).OfType<TimeSpan>();
}

/// <summary>The file formats a file destination writes.</summary>
public static class ExportFormats
{
    public const string Csv = "csv";
    public const string Parquet = "parquet";

    public static readonly IReadOnlyList<string> All = [Csv, Parquet];
}
