using System.Text.Json;
using Tessera.Core.Collection;

namespace Tessera.Collection.Tests;

/// <summary>
/// The validator's reading of names: the type compared as UTF-8 (escapes and all, case-sensitive as Segment's spec),
/// event names that recur shared as one string, escaped ones decoded.
/// </summary>
public sealed class MessageValidatorTests
{
    private static CollectedEvent Validate(string json)
    {
        using var document = JsonDocument.Parse(json);
        Assert.True(MessageValidator.TryValidate(document.RootElement, null, "src", DateTimeOffset.UtcNow, null, out var collected, out var rejection), rejection?.Reason);
        return collected!;
    }

    [Fact]
    public void an_event_name_that_recurs_is_one_string_and_an_escaped_one_reads_decoded()
    {
        var first = Validate("""{"type":"track","userId":"u-1","event":"Order Completed"}""");
        var second = Validate("""{"type":"track","userId":"u-2","event":"Order Completed"}""");
        var escaped = Validate("""{"type":"track","userId":"u-3","event":"Caf\u00e9 Visited"}""");
        var page = Validate("""{"type":"page","userId":"u-4","name":"Pricing"}""");

        Assert.Equal("Order Completed", first.Event);
        Assert.Same(first.Event, second.Event);
        Assert.Equal("Café Visited", escaped.Event);
        Assert.Equal("Pricing", page.Event);
    }

    [Fact]
    public void the_type_is_read_with_its_escapes_and_an_unknown_or_differently_cased_one_is_refused_naming_the_field()
    {
        Assert.Equal(MessageType.Track, Validate("""{"type":"tr\u0061ck","userId":"u-1","event":"E"}""").Type);
        Assert.Equal(MessageType.Alias, Validate("""{"type":"alias","userId":"u-1","previousId":"a-1"}""").Type);
        foreach (var type in new[] { "\"Track\"", "\"purchase\"", "42", "null" })
        {
            using var document = JsonDocument.Parse($$"""{"type":{{type}},"userId":"u-1","event":"E"}""");
            Assert.False(MessageValidator.TryValidate(document.RootElement, null, "src", DateTimeOffset.UtcNow, null, out _, out var rejection));
            Assert.Equal("type", rejection!.Field);
        }
    }

    [Fact]
    public void a_member_given_twice_counts_as_its_last_and_names_with_escapes_are_read()
    {
        const string json = """{"type":"track","userId":"u-1","event":"First","user\u0049d":"u-2","event":"Second","properties":[1],"properties":{"a":1},"messageId":"m-1"}""";
        var collected = Validate(json);

        Assert.Equal(("u-2", "Second", "m-1"), (collected.UserId, collected.Event, collected.MessageId));
        // As a lookup by name reads them (it takes the last member of a name).
        using var document = JsonDocument.Parse(json);
        Assert.Equal("Second", document.RootElement.GetProperty("event").GetString());
        using var invalidLast = JsonDocument.Parse("""{"type":"track","userId":"u-1","event":"E","properties":{},"properties":[1]}""");
        Assert.False(MessageValidator.TryValidate(invalidLast.RootElement, null, "src", DateTimeOffset.UtcNow, null, out _, out var rejection));
        Assert.Equal("properties", rejection!.Field);
        using var escapedWriteKey = JsonDocument.Parse("""{"type":"track","userId":"u-1","event":"E","write\u004bey":"wk_secret"}""");
        Assert.True(MessageValidator.TryValidate(escapedWriteKey.RootElement, null, "src", DateTimeOffset.UtcNow, null, out var withoutKey, out _));
        Assert.DoesNotContain("wk_secret", withoutKey!.Raw.ToString(), StringComparison.Ordinal);
    }

    private static readonly DateTimeOffset ReceivedAt = new(2026, 12, 5, 9, 0, 0, TimeSpan.Zero);

    public static TheoryData<string> ValidMessages() => new(
        """{"type":"track","messageId":"m-1","userId":"u-1","anonymousId":"a-1","event":"Order Completed","properties":{"total":12.5},"timestamp":"2026-12-05T08:00:00Z"}""",
        """{"type":"track","messageId":"m-2","userId":"u\u002d2","event":"Caf\u00e9 Visited","context":{"ip":"10.0.0.1"}}""",
        """{"type":"identify","messageId":"m-3","userId":42,"anonymousId":1.5e3,"traits":{"email":"a@example.com"}}""",
        """{"type":"page","messageId":"m-4","anonymousId":"a-4","name":"","writeKey":"wk_secret","properties":{"path":"/"}}""",
        """{"type":"screen","messageId":"m-5","anonymousId":"a-5","originalTimestamp":"2026-12-05T08:59:00Z","sentAt":"2026-12-05T09:01:00+02:00"}""",
        """{"type":"track","messageId":"m-6","userId":"u-6","event":"E","timestamp":"2026-01-01T00:00:00Z","originalTimestamp":"2026-12-05T08:59:00Z"}""",
        """{"type":"group","messageId":"m-7","userId":"","anonymousId":"a-7","groupId":"g-7","traits":null}""",
        """{"type":"alias","messageId":"m-8","userId":"u-8","previousId":"a-8"}""",
        """{"type":"track","messageId":"m-9-ü-✓","userId":"ユーザー","event":"é"}""",
        """{"type":"track","messageId":"m-10","userId":"u-10","event":"E","sentAt":null,"timestamp":null}""");

    [Theory]
    [MemberData(nameof(ValidMessages))]
    public void a_valid_message_encodes_to_the_same_bytes_as_its_collected_event_encoded(string json)
    {
        using var document = JsonDocument.Parse(json);
        var batchSentAt = ReceivedAt.AddSeconds(-3);
        Assert.True(MessageValidator.TryValidate(document.RootElement, null, "src_1", ReceivedAt, batchSentAt, out var collected, out _));
        using var direct = new EncodedEvents(16);

        Assert.True(MessageValidator.TryValidate(document.RootElement, null, "src_1", ReceivedAt, batchSentAt, direct, out var rejection), rejection?.Reason);

        using var viaObject = EncodedEvents.Of([collected!]);
        Assert.Equal(1, direct.Count);
        Assert.Equal(viaObject.Bytes.ToArray(), direct.Bytes.ToArray());
        var decoded = new List<CollectedEvent>();
        direct.DecodeInto(decoded);
        Assert.Equal(collected, Assert.Single(decoded));
        Assert.DoesNotContain("wk_secret", decoded[0].Raw.ToString(), StringComparison.Ordinal);
    }

    [Fact]
    public void a_message_without_a_message_id_gets_a_generated_one_on_either_path()
    {
        using var document = JsonDocument.Parse("""{"type":"track","userId":"u-1","event":"E"}""");
        Assert.True(MessageValidator.TryValidate(document.RootElement, null, "src_1", ReceivedAt, null, out var collected, out _));
        using var direct = new EncodedEvents();
        Assert.True(MessageValidator.TryValidate(document.RootElement, null, "src_1", ReceivedAt, null, direct, out _));
        Assert.True(MessageValidator.TryValidate(document.RootElement, null, "src_1", ReceivedAt, null, direct, out _));
        var decoded = new List<CollectedEvent>();

        direct.DecodeInto(decoded);

        Assert.All(decoded, e => Assert.StartsWith("tessera-", e.MessageId, StringComparison.Ordinal));
        Assert.NotEqual(decoded[0].MessageId, decoded[1].MessageId);
        Assert.Equal(collected! with { MessageId = decoded[0].MessageId }, decoded[0]);
    }

    public static TheoryData<string, string> InvalidMessages() => new()
    {
        { "[1]", "" },
        { """{"type":"track","userId":"u-1"}""", "event" },
        { """{"type":"track","userId":"u-1","event":"   "}""", "event" },
        { """{"type":"track","userId":"u-1","event":"\u00a0"}""", "event" },
        { """{"type":"track","userId":"u-1","event":7}""", "event" },
        { """{"type":"track","event":"E"}""", "userId" },
        { """{"type":"track","userId":"","anonymousId":null,"event":"E"}""", "userId" },
        { """{"type":"track","userId":true,"event":"E"}""", "userId" },
        { """{"type":"group","userId":"u-1"}""", "groupId" },
        { """{"type":"alias","anonymousId":"a-1","previousId":"p-1"}""", "userId" },
        { """{"type":"track","userId":"u-1","event":"E","properties":[1]}""", "properties" },
        { """{"type":"track","userId":"u-1","event":"E","timestamp":"yesterday"}""", "timestamp" },
        { $$"""{"type":"track","userId":"u-1","event":"E","messageId":"{{new string('m', 257)}}"}""", "messageId" },
        { $$"""{"type":"track","userId":"u-1","event":"E","messageId":"{{string.Concat(Enumerable.Repeat("\u00e9", 257))}}"}""", "messageId" },
    };

    [Theory]
    [MemberData(nameof(InvalidMessages))]
    public void an_invalid_message_is_refused_alike_on_either_path_and_nothing_is_encoded(string json, string field)
    {
        using var document = JsonDocument.Parse(json);
        Assert.False(MessageValidator.TryValidate(document.RootElement, null, "src_1", ReceivedAt, null, out _, out var viaObject));
        using var direct = new EncodedEvents();

        Assert.False(MessageValidator.TryValidate(document.RootElement, null, "src_1", ReceivedAt, null, direct, out var rejection));

        Assert.Equal(field, rejection!.Field);
        Assert.Equal(viaObject, rejection);
        Assert.Equal(0, direct.Count);
        Assert.Equal(0, direct.Length);
    }

    [Fact]
    public void a_message_id_is_limited_in_characters_not_in_bytes()
    {
        // 256 two-byte characters: 512 bytes of UTF-8, within the limit of 256 characters.
        using var document = JsonDocument.Parse($$"""{"type":"track","userId":"u-1","event":"E","messageId":"{{new string('é', 256)}}"}""");
        using var direct = new EncodedEvents();

        Assert.True(MessageValidator.TryValidate(document.RootElement, null, "src_1", ReceivedAt, null, direct, out var rejection), rejection?.Reason);

        var decoded = new List<CollectedEvent>();
        direct.DecodeInto(decoded);
        Assert.Equal(new string('é', 256), decoded[0].MessageId);
    }
}
