using System.Collections.Concurrent;
using System.Text.Encodings.Web;
using System.Text.Json.Nodes;
using Fluid;

namespace Tessera.Server.Activation;

/// <summary>
/// The subject and body of email destinations: Liquid templates (the Fluid library) filled from the profile:
/// <c>{{ traits.first_name }}</c>, <c>{{ identifiers.email }}</c>, <c>{{ profile.id }}</c>, <c>{{ segment.name }}</c>,
/// <c>{{ event.name }}</c>, <c>{{ event.properties.sku }}</c>, with Liquid's filters (<c>{{ traits.first_name | default: "there" }}</c>).
/// Safe: a template reads only that model (plain values, no .NET objects), cannot loop without end (a step limit),
/// and in an HTML body every value is HTML-encoded.
/// </summary>
public static class EmailTemplates
{
    private static readonly FluidParser Parser = new();
    private static readonly TemplateOptions Options = new() { MaxSteps = 10_000, MaxRecursion = 20 };
    private static readonly ConcurrentDictionary<string, IFluidTemplate> Parsed = new(StringComparer.Ordinal);

    /// <summary>Null when <paramref name="source"/> parses; else the parser's message (with line and column).</summary>
    public static string? Problem(string source) => Parser.TryParse(source, out _, out var error) ? null : error;

    public static string Render(string source, IReadOnlyDictionary<string, object?> model, bool html)
    {
        var template = Parsed.GetOrAdd(source, s => Parser.Parse(s));
        var context = new TemplateContext(Options);
        foreach (var (name, value) in model) { context.SetValue(name, value); }
        return template.Render(context, html ? HtmlEncoder.Default : NullEncoder.Default);
    }

    /// <summary>A JSON value as plain .NET values the template can read: objects as dictionaries, arrays as lists.</summary>
    public static object? Plain(JsonNode? node) => node switch
    {
        null => null,
        JsonObject o => o.ToDictionary(p => p.Key, p => Plain(p.Value), StringComparer.Ordinal),
        JsonArray a => a.Select(Plain).ToList(),
        JsonValue v when v.TryGetValue<bool>(out var b) => b,
        JsonValue v when v.TryGetValue<decimal>(out var d) => d,
        JsonValue v when v.TryGetValue<string>(out var s) => s,
        _ => node.ToJsonString(),
    };
}
