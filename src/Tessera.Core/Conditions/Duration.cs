using System.Globalization;

namespace Tessera.Core.Conditions;

/// <summary>Durations as written in definitions: <c>Ns Nm Nh Nd Nw</c> (e.g. <c>15m</c>, <c>30d</c>).</summary>
public static class Duration
{
    public static bool TryParse(string? text, out TimeSpan duration)
    {
        duration = default;
        if (text is not { Length: >= 2 } || !long.TryParse(text.AsSpan(0, text.Length - 1), NumberStyles.None, CultureInfo.InvariantCulture, out var n) || n <= 0)
        {
            return false;
        }

        duration = text[^1] switch
        {
            's' => TimeSpan.FromSeconds(n),
            'm' => TimeSpan.FromMinutes(n),
            'h' => TimeSpan.FromHours(n),
            'd' => TimeSpan.FromDays(n),
            'w' => TimeSpan.FromDays(7 * n),
            _ => TimeSpan.Zero,
        };
        return duration > TimeSpan.Zero;
    }
}
