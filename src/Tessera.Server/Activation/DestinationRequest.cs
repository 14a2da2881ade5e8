using System.Text.Json;
using System.Text.RegularExpressions;
using Microsoft.AspNetCore.Http.HttpResults;
using Tessera.Core.Activation;
using Tessera.Core.Conditions;
using Tessera.Core.Profiles;
using Tessera.Server.Hosting;

namespace Tessera.Server.Activation;

/// <summary>
/// Reads and checks a destination sent to <c>POST/PUT /api/destinations</c>, at the edge: every problem names its
/// field (<c>url</c>, <c>segments[1]</c>, <c>where[0].op</c>, <c>smtp.port</c>); what passes is a valid
/// <see cref="Destination"/>. On PUT, a secret or SMTP password left out keeps the stored one.
/// </summary>
public static partial class DestinationRequest
{
    private static readonly string[] Securities = ["none", "starttls", "ssl", "auto"];

    [GeneratedRegex(@"^[a-z0-9][a-z0-9_.\-]{0,63}$")]
    private static partial Regex PurposePattern();

    [GeneratedRegex(@"^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$")]
    private static partial Regex HeaderNamePattern();

    [GeneratedRegex(@"^(traits|identifiers)\.[^\s.][^\s]*$")]
    private static partial Regex AddressPathPattern();

    public static ProblemHttpResult? Parse(JsonElement body, string id, Destination? existing, ProfileEngine engine, DateTimeOffset now, out Destination? destination)
    {
        destination = null;
        if (body.ValueKind != JsonValueKind.Object) { return Problems.Field("", "the body must be a JSON object"); }

        if (String(body, "type", out var type) is { } typeProblem) { return typeProblem; }
        if (type is null) { return Problems.Field("type", $"is required: one of {string.Join(", ", DestinationTypes.All)}"); }
        if (!DestinationTypes.All.Contains(type)) { return Problems.Field("type", $"'{type}' is not one of {string.Join(", ", DestinationTypes.All)}"); }
        if (existing is not null && existing.Type != type) { return Problems.Field("type", $"cannot change from '{existing.Type}'; create a new destination instead"); }

        if (String(body, "name", out var name) is { } nameProblem) { return nameProblem; }
        if (name is { Length: > 200 }) { return Problems.Field("name", "must be at most 200 characters"); }

        if (Strings(body, "segments", out var segments) is { } segmentsProblem) { return segmentsProblem; }
        for (var i = 0; i < segments.Count; i++)
        {
            if (engine.GetAudience(segments[i]) is null) { return Problems.Field($"segments[{i}]", $"no audience '{segments[i]}'"); }
        }

        if (Strings(body, "events", out var events) is { } eventsProblem) { return eventsProblem; }
        if (Filters(body, out var where) is { } whereProblem) { return whereProblem; }
        if (type == DestinationTypes.File && (events.Count > 0 || where.Count > 0))
        {
            return Problems.Field(events.Count > 0 ? "events" : "where", "a file destination exports audiences: list them in segments (events are not written to files)");
        }

        if (type == DestinationTypes.File && segments.Count == 0) { return Problems.Field("segments", "is required: the audiences whose members are exported"); }

        // None of segments, events and where is fine for a webhook or an email: a destination only journeys send to
        // (docs/journeys.md). Journeys do not send to Segment destinations, so one of those must subscribe to something.
        if (type == DestinationTypes.Segment && segments.Count == 0 && events.Count == 0 && where.Count == 0)
        {
            return Problems.Field("segments", "subscribe to something: audiences in segments, event names in events, or an event filter in where");
        }

        if (String(body, "purpose", out var purpose) is { } purposeProblem) { return purposeProblem; }
        if (purpose is not null)
        {
            purpose = Consent.Normalize(purpose);
            if (!PurposePattern().IsMatch(purpose)) { return Problems.Field("purpose", "must be a consent category name such as marketing or analytics (letters, digits, _ . -, at most 64)"); }
        }

        var enabled = true;
        if (body.TryGetProperty("enabled", out var e) && e.ValueKind != JsonValueKind.Null)
        {
            if (e.ValueKind is not (JsonValueKind.True or JsonValueKind.False)) { return Problems.Field("enabled", "must be true or false"); }
            enabled = e.GetBoolean();
        }

        FrequencyCap? cap = null;
        if (body.TryGetProperty("frequencyCap", out var fc) && fc.ValueKind != JsonValueKind.Null)
        {
            if (fc.ValueKind != JsonValueKind.Object) { return Problems.Field("frequencyCap", "must be an object {max, per}, e.g. {\"max\": 1, \"per\": \"1d\"}"); }
            if (Int(fc, "max", "frequencyCap.max", 1, 1_000_000, 0, out var max) is { } maxProblem) { return maxProblem; }
            if (max == 0) { return Problems.Field("frequencyCap.max", "is required: the most deliveries per profile in the period"); }
            if (String(fc, "per", out var per, "frequencyCap.per") is { } perProblem) { return perProblem; }
            if (!Duration.TryParse(per, out _)) { return Problems.Field("frequencyCap.per", $"'{per}' is not a duration such as 30m, 12h, 1d or 1w"); }
            cap = new FrequencyCap(max, per!);
        }

        WebhookSettings? webhook = null;
        EmailSettings? email = null;
        FileExportSettings? file = null;
        SegmentSettings? forward = null;
        var problem = type switch
        {
            DestinationTypes.Webhook => ParseWebhook(body, existing?.Webhook, out webhook),
            DestinationTypes.File => ParseFile(body, out file),
            DestinationTypes.Segment => ParseSegment(body, existing?.Segment, out forward),
            _ => ParseEmail(body, existing?.Email, out email),
        };
        if (problem is not null) { return problem; }

        destination = new Destination
        {
            Id = id,
            Name = name?.Trim() is { Length: > 0 } n ? n : DefaultName(webhook, email, file, forward),
            Type = type,
            Segments = segments,
            Events = events,
            Where = where,
            Purpose = purpose,
            FrequencyCap = cap,
            Enabled = enabled,
            Webhook = webhook,
            Email = email,
            File = file,
            Segment = forward,
            CreatedAt = existing?.CreatedAt ?? now,
            UpdatedAt = now,
        };
        return null;
    }

    private static string DefaultName(WebhookSettings? webhook, EmailSettings? email, FileExportSettings? file, SegmentSettings? forward) =>
        webhook is not null ? $"webhook to {new Uri(webhook.Url).Host}"
        : file is not null ? $"{file.Format} files in {file.Directory}"
        : forward is not null ? $"Segment forwarding to {new Uri(forward.Url).Host}"
        : $"email via {email?.Smtp.Host}";

    /// <summary>The body's <c>url</c>: required (<paramref name="required"/> says why when it is missing), an absolute http or https URL.</summary>
    private static ProblemHttpResult? HttpUrl(JsonElement body, string required, out Uri uri)
    {
        uri = null!;
        if (String(body, "url", out var url) is { } problem) { return problem; }
        if (url is null) { return Problems.Field("url", required); }
        if (!Uri.TryCreate(url, UriKind.Absolute, out var parsed) || parsed.Scheme is not ("http" or "https") || string.IsNullOrEmpty(parsed.Host))
        {
            return Problems.Field("url", $"'{url}' is not an absolute http or https URL");
        }

        uri = parsed;
        return null;
    }

    private static ProblemHttpResult? ParseWebhook(JsonElement body, WebhookSettings? existing, out WebhookSettings? webhook)
    {
        webhook = null;
        if (HttpUrl(body, "is required: where to POST", out var uri) is { } urlProblem) { return urlProblem; }

        if (String(body, "secret", out var secret) is { } secretProblem) { return secretProblem; }
        secret ??= existing?.Secret;
        if (secret is null) { return Problems.Field("secret", "is required: every request is signed with it (X-Tessera-Signature)"); }
        if (secret.Length < 16) { return Problems.Field("secret", "must be at least 16 characters"); }

        var headers = new Dictionary<string, string>(StringComparer.OrdinalIgnoreCase);
        if (body.TryGetProperty("headers", out var h) && h.ValueKind != JsonValueKind.Null)
        {
            if (h.ValueKind != JsonValueKind.Object) { return Problems.Field("headers", "must be an object of header name to value"); }
            foreach (var p in h.EnumerateObject())
            {
                var field = $"headers.{p.Name}";
                if (!HeaderNamePattern().IsMatch(p.Name)) { return Problems.Field(field, "is not a valid header name"); }
                if (WebhookChannel.ReservedHeaders.Contains(p.Name.ToLowerInvariant())) { return Problems.Field(field, "is set by Tessera and cannot be replaced"); }
                if (p.Value.ValueKind != JsonValueKind.String) { return Problems.Field(field, "must be a string"); }
                var value = p.Value.GetString()!;
                if (value.Any(c => c is '\r' or '\n')) { return Problems.Field(field, "must not contain line breaks"); }
                headers[p.Name] = value;
            }
        }

        if (Batching(body, out var batching) is { } batchingProblem) { return batchingProblem; }
        webhook = new WebhookSettings(uri.ToString(), secret, headers, batching);
        return null;
    }

    /// <summary>Reads <c>batching</c>: absent, null or false is off; true is the defaults (100 a request, 1,000 ms).</summary>
    private static ProblemHttpResult? Batching(JsonElement body, out BatchingSettings? batching, int maxSize = 10_000)
    {
        batching = null;
        if (!body.TryGetProperty("batching", out var b) || b.ValueKind is JsonValueKind.Null or JsonValueKind.False) { return null; }
        if (b.ValueKind == JsonValueKind.True)
        {
            batching = new BatchingSettings(100, 1000);
            return null;
        }

        if (b.ValueKind != JsonValueKind.Object) { return Problems.Field("batching", "must be an object {enabled, maxSize, maxWaitMs}, true or false"); }
        var on = !b.TryGetProperty("enabled", out var en) || en.ValueKind != JsonValueKind.False;
        if (Int(b, "maxSize", "batching.maxSize", 1, maxSize, 100, out var size) is { } sizeProblem) { return sizeProblem; }
        if (Int(b, "maxWaitMs", "batching.maxWaitMs", 0, 60_000, 1000, out var wait) is { } waitProblem) { return waitProblem; }
        batching = on ? new BatchingSettings(size, wait) : null;
        return null;
    }

    private static ProblemHttpResult? ParseEmail(JsonElement body, EmailSettings? existing, out EmailSettings? email)
    {
        email = null;
        if (!body.TryGetProperty("smtp", out var smtp) || smtp.ValueKind != JsonValueKind.Object)
        {
            return Problems.Field("smtp", "is required: {host, port, username, password, security}");
        }

        if (String(smtp, "host", out var host, "smtp.host") is { } hostProblem) { return hostProblem; }
        if (string.IsNullOrWhiteSpace(host)) { return Problems.Field("smtp.host", "is required"); }
        if (Int(smtp, "port", "smtp.port", 1, 65_535, 25, out var port) is { } portProblem) { return portProblem; }
        if (String(smtp, "username", out var username, "smtp.username") is { } userProblem) { return userProblem; }
        if (String(smtp, "password", out var password, "smtp.password") is { } passwordProblem) { return passwordProblem; }
        password ??= username is not null && existing?.Smtp.Username == username ? existing.Smtp.Password : null;
        if (String(smtp, "security", out var security, "smtp.security") is { } securityProblem) { return securityProblem; }
        security ??= "auto";
        if (!Securities.Contains(security)) { return Problems.Field("smtp.security", $"'{security}' is not one of {string.Join(", ", Securities)}"); }

        if (String(body, "from", out var from) is { } fromProblem) { return fromProblem; }
        if (from is null) { return Problems.Field("from", "is required: the sender address"); }
        if (!MimeKit.MailboxAddress.TryParse(from, out var sender) || !sender.Address.Contains('@', StringComparison.Ordinal))
        {
            return Problems.Field("from", $"'{from}' is not an email address");
        }

        if (String(body, "to", out var to) is { } toProblem) { return toProblem; }
        to ??= "traits.email";
        if (!AddressPathPattern().IsMatch(to)) { return Problems.Field("to", $"'{to}' must name where the address is: traits.NAME or identifiers.TYPE (e.g. traits.email)"); }

        if (String(body, "subject", out var subject) is { } subjectProblem) { return subjectProblem; }
        if (string.IsNullOrWhiteSpace(subject)) { return Problems.Field("subject", "is required (a Liquid template, e.g. \"Hi {{ traits.first_name }}\")"); }
        if (EmailTemplates.Problem(subject) is { } badSubject) { return Problems.Field("subject", $"is not a valid template: {badSubject}"); }
        if (String(body, "body", out var text) is { } bodyProblem) { return bodyProblem; }
        if (string.IsNullOrWhiteSpace(text)) { return Problems.Field("body", "is required (a Liquid template)"); }
        if (EmailTemplates.Problem(text) is { } badBody) { return Problems.Field("body", $"is not a valid template: {badBody}"); }
        var html = body.TryGetProperty("html", out var hv) && hv.ValueKind == JsonValueKind.True;

        email = new EmailSettings(new SmtpSettings(host.Trim(), port, username, password, security), sender.ToString(), to, subject, text, html);
        return null;
    }

    private static ProblemHttpResult? String(JsonElement obj, string name, out string? value, string? field = null)
    {
        value = null;
        if (!obj.TryGetProperty(name, out var v) || v.ValueKind == JsonValueKind.Null) { return null; }
        if (v.ValueKind != JsonValueKind.String) { return Problems.Field(field ?? name, "must be a string"); }
        value = v.GetString();
        return null;
    }

    private static ProblemHttpResult? Int(JsonElement obj, string name, string field, int min, int max, int fallback, out int value)
    {
        value = fallback;
        if (!obj.TryGetProperty(name, out var v) || v.ValueKind == JsonValueKind.Null) { return null; }
        if (v.ValueKind != JsonValueKind.Number || !v.TryGetInt32(out value) || value < min || value > max)
        {
            return Problems.Field(field, $"must be a whole number from {min} to {max}");
        }

        return null;
    }

    private static ProblemHttpResult? Strings(JsonElement body, string name, out List<string> values)
    {
        values = [];
        if (!body.TryGetProperty(name, out var v) || v.ValueKind == JsonValueKind.Null) { return null; }
        if (v.ValueKind != JsonValueKind.Array) { return Problems.Field(name, "must be an array of strings"); }
        var i = 0;
        foreach (var item in v.EnumerateArray())
        {
            if (item.ValueKind != JsonValueKind.String || string.IsNullOrWhiteSpace(item.GetString())) { return Problems.Field($"{name}[{i}]", "must be a non-empty string"); }
            if (!values.Contains(item.GetString()!, StringComparer.Ordinal)) { values.Add(item.GetString()!); }
            i++;
        }

        return null;
    }

    private static ProblemHttpResult? Filters(JsonElement body, out List<PropertyFilter> filters)
    {
        filters = [];
        if (!body.TryGetProperty("where", out var v) || v.ValueKind == JsonValueKind.Null) { return null; }
        if (v.ValueKind != JsonValueKind.Array) { return Problems.Field("where", "must be an array of filters: [{\"property\": \"revenue\", \"op\": \"gt\", \"value\": 50}]"); }
        var i = 0;
        foreach (var item in v.EnumerateArray())
        {
            var field = $"where[{i++}]";
            if (item.ValueKind != JsonValueKind.Object) { return Problems.Field(field, "must be a filter object {property, op, value}"); }
            if (String(item, "property", out var property, $"{field}.property") is { } p1) { return p1; }
            if (String(item, "op", out var op, $"{field}.op") is { } p2) { return p2; }
            JsonElement? value = item.TryGetProperty("value", out var val) ? val.Clone() : null;
            var filter = new PropertyFilter(property ?? "", op ?? "", value);
            if (filter.Problem() is { } problem)
            {
                var part = problem.StartsWith("property", StringComparison.Ordinal) ? "property" : problem.StartsWith("value", StringComparison.Ordinal) ? "value" : "op";
                return Problems.Field($"{field}.{part}", problem);
            }

            filters.Add(filter);
        }

        return null;
    }
}
