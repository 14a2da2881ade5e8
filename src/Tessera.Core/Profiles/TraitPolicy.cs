namespace Tessera.Core.Profiles;

/// <summary>How a trait's value is chosen when several messages (or merged profiles) give it.</summary>
public enum TraitPolicy
{
    /// <summary>The value with the latest event time wins (the default).</summary>
    Latest,

    /// <summary>The value with the earliest event time wins.</summary>
    First,

    /// <summary>The highest number (or, for text, the last in ordinal order) wins.</summary>
    Highest,

    /// <summary>The lowest wins.</summary>
    Lowest,

    /// <summary>The value from the source listed first in <see cref="ProfileRules.SourcePriority"/> wins; ties by latest.</summary>
    SourcePriority,
}
