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
}
