using System.Globalization;

namespace Tessera.Core.Conditions;

/// <summary>Durations as written in definitions: <c>Ns Nm Nh Nd Nw</c> (e.g. <c>15m</c>, <c>30d</c>), at most <see cref="Max"/>.</summary>
public static class Duration
{
    /// <summary>
    /// The longest duration accepted: 36,500 days (about a century). Longer ones would overflow <c>now - within</c>
    /// (and <see cref="TimeSpan"/> itself, past about 10.7 million days) instead of meaning anything.
    /// </summary>
    public static readonly TimeSpan Max = TimeSpan.FromDays(36_500);

    public static bool TryParse(string? text, out TimeSpan duration)
    {
        duration = default;
        if (text is not { Length: >= 2 } || !long.TryParse(text.AsSpan(0, text.Length - 1), NumberStyles.None, CultureInfo.InvariantCulture, out var n) || n <= 0)
        {
            return false;
        }

        var unit = text[^1] switch
        {
            's' => TimeSpan.FromSeconds(1),
            'm' => TimeSpan.FromMinutes(1),
            'h' => TimeSpan.FromHours(1),
            'd' => TimeSpan.FromDays(1),
            'w' => TimeSpan.FromDays(7),
            _ => TimeSpan.Zero,
        };

        // Compare in units first: n * unit could overflow TimeSpan before the comparison with Max.
        if (unit == TimeSpan.Zero || n > Max.Ticks / unit.Ticks) { return false; }
        duration = TimeSpan.FromTicks(n * unit.Ticks);
        return true;
    }
}
