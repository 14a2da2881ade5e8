namespace Tessera.Server.Journeys;

/// <summary>How journeys are moved (<see cref="Hosting.TesseraOptions.Journeys"/>); every default is here.</summary>
public sealed class JourneyOptions
{
    /// <summary>Move runs at all. Off, nothing is lost: the cursor waits and due runs stay due until it is on again.</summary>
    public bool Enabled { get; set; } = true;

    /// <summary>How often runs whose wait has ended are looked for (one indexed query when none is due).</summary>
    public TimeSpan PollInterval { get; set; } = TimeSpan.FromMilliseconds(250);

    /// <summary>How often the logs are read for entries, awaited events and exits when no commit signalled new ones.</summary>
    public TimeSpan DeriveInterval { get; set; } = TimeSpan.FromMilliseconds(500);

    /// <summary>Most due runs moved in one transaction.</summary>
    public int DueBatch { get; set; } = 5_000;
}
