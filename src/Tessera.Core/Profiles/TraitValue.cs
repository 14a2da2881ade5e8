using System.Text.Json.Nodes;

namespace Tessera.Core.Profiles;

/// <summary>A trait's value with where and when it came from.</summary>
public sealed record TraitValue(JsonNode? Value, DateTimeOffset At, long Seq, string SourceId);

/// <summary>One change of one trait on one profile: the history row.</summary>
public sealed record TraitChange(string ProfileId, string Name, TraitValue Value);
