namespace Tessera.Core.Identity;

/// <summary>How values of one identifier type are cleaned before they are compared.</summary>
public enum Normalization
{
    /// <summary>Trimmed only.</summary>
    Trim,

    /// <summary>Trimmed and lower-cased.</summary>
    Lowercase,

    /// <summary>Trimmed, lower-cased, and must look like an address (one @, a dot after it).</summary>
    Email,

    /// <summary>Parsed with libphonenumber and written in E.164, using the rules' default region for national numbers.</summary>
    Phone,
}

/// <summary>
/// One identifier type and its rules. <see cref="Priority"/> decides which identifier is left out of a link that
/// would break a limit (the lower one, as Segment does); <see cref="MaxPerProfile"/> is that limit.
/// </summary>
public sealed record IdentifierTypeRule
{
    public required string Type { get; init; }

    /// <summary>Higher wins. A link that would break a limit drops its lowest-priority identifiers first.</summary>
    public int Priority { get; init; }

    /// <summary>Most values of this type one profile may hold; null for no limit.</summary>
    public int? MaxPerProfile { get; init; }

    public Normalization Normalize { get; init; } = Normalization.Trim;

    /// <summary>Where values are read from, as message paths: <c>userId</c>, <c>traits.email</c>, <c>context.traits.phone</c>.</summary>
    public IReadOnlyList<string> Paths { get; init; } = [];

    /// <summary>Values never used as identifiers (compared after normalisation, case-insensitively).</summary>
    public IReadOnlyList<string> Blocked { get; init; } = [];

    /// <summary>Regular expressions; a value that matches one is never used.</summary>
    public IReadOnlyList<string> BlockedPatterns { get; init; } = [];
}
