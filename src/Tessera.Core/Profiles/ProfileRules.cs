namespace Tessera.Core.Profiles;

/// <summary>Trait merge policies: one per named trait, a default for the rest, and the source order for <see cref="TraitPolicy.SourcePriority"/>.</summary>
public sealed record ProfileRules
{
    public TraitPolicy DefaultPolicy { get; init; } = TraitPolicy.Latest;

    public IReadOnlyDictionary<string, TraitPolicy> Traits { get; init; } = new Dictionary<string, TraitPolicy>();

    /// <summary>Source ids or names, most trusted first.</summary>
    public IReadOnlyList<string> SourcePriority { get; init; } = [];

    public static ProfileRules Default { get; } = new();

    public TraitPolicy PolicyFor(string trait) => Traits.TryGetValue(trait, out var policy) ? policy : DefaultPolicy;
}
