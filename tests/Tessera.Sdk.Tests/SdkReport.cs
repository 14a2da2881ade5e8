using System.Text.Json.Nodes;

namespace Tessera.Sdk.Tests;

/// <summary>
/// What a driver script saw: every HTTP request the SDK made to Tessera (with its body, as the SDK put it on the
/// wire) and Tessera's answer, plus the SDK's own errors.
/// </summary>
public sealed class SdkReport(JsonObject json, string stderr)
{
    public JsonObject Json { get; } = json;

    /// <summary>What the script wrote to stderr; shown in failures.</summary>
    public string Stderr { get; } = stderr;

    /// <summary>The SDK package's version, from its package.json.</summary>
    public string Library => (string)Json["library"]!;

    public IReadOnlyList<JsonObject> Requests => Json["requests"]!.AsArray().Select(r => r!.AsObject()).ToList();

    public IReadOnlyList<string> Errors => Json["errors"]?.AsArray().Select(e => e!.ToString()).ToList() ?? [];

    /// <summary>Every message the SDK sent, each with the request that carried it (a batch or a single call).</summary>
    public IReadOnlyList<SentMessage> Sent =>
        Requests
            .Where(r => (string?)r["method"] is "POST" or "post" && r["body"] is JsonObject)
            .SelectMany(r => r["body"]!["batch"] is JsonArray batch
                ? batch.Select(m => new SentMessage(m!.AsObject(), r))
                : [new SentMessage(r["body"]!.AsObject(), r)])
            .ToList();

    /// <summary>The report for a failure message, cut short: the first few thousand characters say what happened.</summary>
    public override string ToString()
    {
        var text = Json.ToJsonString() + (Stderr.Length > 0 ? "\nstderr:\n" + Stderr : "");
        return text.Length <= 4000 ? text : text[..4000] + "…";
    }
}

/// <param name="Message">The message as the SDK sent it.</param>
/// <param name="Request">The request it went out in: <c>url</c>, <c>headers</c>, <c>body</c>, <c>response.status</c>.</param>
public sealed record SentMessage(JsonObject Message, JsonObject Request)
{
    public string MessageId => (string)Message["messageId"]!;

    public string Type => (string)Message["type"]!;

    /// <summary>The message's own <c>sentAt</c>, or the batch's when the SDK gives one for the whole batch.</summary>
    public string? SentAt => (string?)Message["sentAt"] ?? (string?)Request["body"]?["sentAt"];
}
