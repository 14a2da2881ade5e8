using System.Text;
using System.Text.Json;
using System.Text.RegularExpressions;

namespace Tessera.Core.Identity;

/// <summary>An identifier value that was found but not used, and why (blocked, unparseable): reported, never silently dropped.</summary>
public sealed record RejectedIdentifier(string Type, string RawValue, string Path, string Reason);

/// <summary>
/// Reads the identifiers of a message according to <see cref="IdentityRules"/>: each type's paths, plus
/// <c>context.externalIds</c> entries whose type is configured. Compiled once per rule set.
/// </summary>
public sealed class IdentifierExtractor
{
    private readonly IdentityRules _rules;
    private readonly (IdentifierTypeRule Rule, byte[][][] Paths, HashSet<string> Blocked, Regex[] Patterns)[] _types;
    private static readonly byte[][] TypePath = [Encoding.UTF8.GetBytes("type")];
    private static readonly byte[][] IdPath = [Encoding.UTF8.GetBytes("id")];

    public IdentifierExtractor(IdentityRules rules)
    {
        _rules = rules;
        _types = rules.Types.Select(t => (
            t,
            // Paths pre-encoded as UTF-8, so reading a message compares bytes instead of transcoding names.
            t.Paths.Select(p => p.Split('.').Select(Encoding.UTF8.GetBytes).ToArray()).ToArray(),
            new HashSet<string>(t.Blocked.Concat(IdentityRules.CommonBlockedValues), StringComparer.OrdinalIgnoreCase),
            t.BlockedPatterns.Select(p => new Regex(p, RegexOptions.CultureInvariant, TimeSpan.FromMilliseconds(50))).ToArray())).ToArray();
    }

    public IdentityRules Rules => _rules;

    /// <summary>The message's identifiers, without duplicates, and the values that were refused.</summary>
    public (List<Identifier> Identifiers, List<RejectedIdentifier> Rejected) Extract(JsonElement message)
    {
        var identifiers = new List<Identifier>();
        var rejected = new List<RejectedIdentifier>();
        foreach (var (rule, paths, blocked, patterns) in _types)
        {
            for (var p = 0; p < paths.Length; p++)
            {
                if (TryRead(message, paths[p], out var raw)) { Add(rule, blocked, patterns, raw, rule.Paths[p], identifiers, rejected); }
            }
        }

        if (message.TryGetProperty("context"u8, out var context) && context.ValueKind == JsonValueKind.Object &&
            context.TryGetProperty("externalIds"u8, out var externalIds) && externalIds.ValueKind == JsonValueKind.Array)
        {
            var i = 0;
            foreach (var external in externalIds.EnumerateArray())
            {
                var path = $"context.externalIds[{i++}]";
                if (external.ValueKind != JsonValueKind.Object || !TryRead(external, TypePath, out var type) || !TryRead(external, IdPath, out var id)) { continue; }
                var index = Array.FindIndex(_types, t => t.Rule.Type == type);
                if (index < 0)
                {
                    rejected.Add(new RejectedIdentifier(type, id, path, $"identifier type '{type}' is not configured"));
                    continue;
                }

                var (rule, _, blocked, patterns) = _types[index];
                Add(rule, blocked, patterns, id, path, identifiers, rejected);
            }
        }

        return (identifiers, rejected);
    }

    private void Add(IdentifierTypeRule rule, HashSet<string> blocked, Regex[] patterns, string raw, string path, List<Identifier> identifiers, List<RejectedIdentifier> rejected)
    {
        if (!IdentifierNormalizer.TryNormalize(raw, rule.Normalize, _rules.DefaultRegion, out var value, out var reason))
        {
            rejected.Add(new RejectedIdentifier(rule.Type, raw, path, reason!));
            return;
        }

        if (blocked.Contains(value) || blocked.Contains(raw.Trim()))
        {
            rejected.Add(new RejectedIdentifier(rule.Type, raw, path, "blocked value"));
            return;
        }

        foreach (var pattern in patterns)
        {
            if (pattern.IsMatch(value))
            {
                rejected.Add(new RejectedIdentifier(rule.Type, raw, path, $"blocked by pattern {pattern}"));
                return;
            }
        }

        var identifier = new Identifier(rule.Type, value);
        if (!identifiers.Contains(identifier)) { identifiers.Add(identifier); }
    }

    private static bool TryRead(JsonElement element, byte[][] path, out string value)
    {
        value = "";
        foreach (var part in path)
        {
            if (element.ValueKind != JsonValueKind.Object || !element.TryGetProperty(part, out element)) { return false; }
        }

        switch (element.ValueKind)
        {
            case JsonValueKind.String:
                value = element.GetString()!;
                return value.Length > 0;
            case JsonValueKind.Number:
                value = element.GetRawText();
                return true;
            default:
                return false;
        }
    }
}
