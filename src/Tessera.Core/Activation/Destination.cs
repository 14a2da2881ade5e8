using System.Text.Json;
using System.Text.Json.Serialization;
using Tessera.Core.Collection;
using Tessera.Core.Conditions;

namespace Tessera.Core.Activation;

/// <summary>
/// Where Tessera sends what happens to profiles: audience entries and exits of the listed <see cref="Segments"/>,
/// and the track events named in <see cref="Events"/> and/or matching every filter in <see cref="Where"/>. The
/// channel's settings sit in the member named after <see cref="Type"/> (<see cref="Webhook"/>, <see cref="Email"/>,
/// <see cref="File"/>, <see cref="Segment"/>); a new kind adds a type name and a settings member, nothing else.
/// </summary>
public sealed record Destination
{
    public required string Id { get; init; }

    public required string Name { get; init; }

    /// <summary>One of <see cref="DestinationTypes.All"/>.</summary>
    public required string Type { get; init; }

    /// <summary>Audience (segment) ids whose entries and exits are sent.</summary>
    public IReadOnlyList<string> Segments { get; init; } = [];

    /// <summary>Track event names that are sent; empty with a non-empty <see cref="Where"/> means any track event.</summary>
    public IReadOnlyList<string> Events { get; init; } = [];

    /// <summary>Filters every sent event must match (the audience language's property filters).</summary>
    public IReadOnlyList<PropertyFilter> Where { get; init; } = [];

    /// <summary>
    /// The consent category this destination serves (e.g. <c>marketing</c>); when set, only profiles whose latest
    /// <c>context.consent.categoryPreferences</c> grants it are sent. Null: sent regardless of consent.
    /// </summary>
    public string? Purpose { get; init; }

    /// <summary>
    /// At most <see cref="FrequencyCap.Max"/> deliveries per profile per <see cref="FrequencyCap.Per"/>; those over it
    /// are logged as skipped. With it, a destination is a trigger: "when X, send to Z, at most N per period".
    /// </summary>
    public FrequencyCap? FrequencyCap { get; init; }

    /// <summary>While false, nothing new is queued for this destination; what was queued is still sent.</summary>
    public bool Enabled { get; init; } = true;

    public WebhookSettings? Webhook { get; init; }

    public EmailSettings? Email { get; init; }

    public FileExportSettings? File { get; init; }

    public SegmentSettings? Segment { get; init; }

    /// <summary>
    /// False for a file destination: it exports its audiences' members on a schedule (<c>FileExportScheduler</c>), so no
    /// delivery is derived from a change or event, and no consent is read for one.
    /// </summary>
    [JsonIgnore]
    public bool FollowsChanges => Type != DestinationTypes.File;

    public DateTimeOffset CreatedAt { get; init; }

    public DateTimeOffset UpdatedAt { get; init; }

    [JsonIgnore]
    public bool SubscribesToEvents => Events.Count > 0 || Where.Count > 0;

    /// <summary>True when <paramref name="message"/> (a track message called <paramref name="eventName"/>) is one this destination receives.</summary>
    public bool Wants(MessageType type, string? eventName, JsonElement message)
    {
        if (type != MessageType.Track || !SubscribesToEvents) { return false; }
        if (Events.Count > 0 && (eventName is null || !Events.Contains(eventName, StringComparer.Ordinal))) { return false; }
        foreach (var filter in Where)
        {
            if (!filter.Matches(message)) { return false; }
        }

        return true;
    }
}

/// <summary>
/// A frequency cap: deliveries to the destination that count (pending, delivered or dead, not skipped or cancelled)
/// created within <see cref="Per"/> (a duration such as <c>1d</c>) before a new one, per profile.
/// </summary>
public sealed record FrequencyCap(int Max, string Per)
{
    public TimeSpan Period => Conditions.Duration.TryParse(Per, out var period) ? period : throw new FormatException($"frequency cap period '{Per}' is not a duration");
}

/// <summary>The kinds of destination Tessera sends to.</summary>
public static class DestinationTypes
{
    public const string Webhook = "webhook";
    public const string Email = "email";
    public const string File = "file";
    public const string Segment = "segment";

    public static readonly IReadOnlyList<string> All = [Webhook, Email, File, Segment];
}

/// <summary>A JSON POST to <see cref="Url"/>, signed with <see cref="Secret"/> (HMAC-SHA256 of the raw body).</summary>
/// <param name="Headers">Extra request headers (an API key, a tenant); they cannot replace the ones Tessera sets.</param>
/// <param name="Batching">Null: one request per delivery. Set: <c>{"batch": [...]}</c> bodies.</param>
public sealed record WebhookSettings(string Url, string Secret, IReadOnlyDictionary<string, string> Headers, BatchingSettings? Batching);

/// <summary>Up to <see cref="MaxSize"/> deliveries per request; a batch that is not full leaves after <see cref="MaxWaitMs"/>.</summary>
public sealed record BatchingSettings(int MaxSize, int MaxWaitMs);

/// <summary>
/// One email per delivery over SMTP. <see cref="Subject"/> and <see cref="Body"/> are Liquid templates filled from
/// the profile (<c>{{ traits.first_name }}</c>); <see cref="To"/> names where the address is read:
/// <c>traits.NAME</c> or <c>identifiers.TYPE</c>.
/// </summary>
public sealed record EmailSettings(SmtpSettings Smtp, string From, string To, string Subject, string Body, bool Html);

/// <param name="Security"><c>none</c>, <c>starttls</c>, <c>ssl</c> or <c>auto</c> (STARTTLS when the server offers it).</param>
public sealed record SmtpSettings(string Host, int Port, string? Username, string? Password, string Security);
