using System.Text;
using Tessera.Core.Collection;

namespace Tessera.Storage.Tests;

public sealed class RawJsonTests
{
    private const string Text = """{"type":"track","event":"Café ✓","properties":{"a":1}}""";

    [Fact]
    public void the_same_text_is_equal_whether_held_as_utf8_or_as_a_string()
    {
        var utf8 = RawJson.CopyOf(Encoding.UTF8.GetBytes(Text));
        RawJson text = Text;

        Assert.True(utf8.IsUtf8);
        Assert.False(text.IsUtf8);
        Assert.Equal(text, utf8);
        Assert.Equal(text.GetHashCode(), utf8.GetHashCode());
        Assert.Equal(Text, utf8.ToString());
        Assert.Equal(Encoding.UTF8.GetByteCount(Text), utf8.Utf8Length);
        Assert.Equal(Encoding.UTF8.GetByteCount(Text), text.Utf8Length);
        Assert.NotEqual(utf8, RawJson.CopyOf(Encoding.UTF8.GetBytes(Text.Replace('1', '2'))));
    }

    [Fact]
    public void held_as_utf8_it_parses_and_finds_ascii_markers_in_its_own_bytes()
    {
        var raw = RawJson.CopyOf(Encoding.UTF8.GetBytes(Text));

        Assert.Equal("Café ✓", raw.Parse().RootElement.GetProperty("event").GetString());
        Assert.Equal(1, raw.ParseNode()!["properties"]!["a"]!.GetValue<int>());
        Assert.True(raw.Contains("\"properties\""));
        Assert.False(raw.Contains("\"traits\""));
        Assert.Equal(raw.Utf8Length, raw.Utf8ForReadOnlyApi().Length);
    }

    [Fact]
    public void ill_formed_utf8_is_replaced_as_decoding_to_a_string_would()
    {
        byte[] bad = [(byte)'"', (byte)'a', 0xFF, (byte)'b', (byte)'"'];

        var raw = RawJson.CopyOf(bad);

        Assert.Equal("\"a\uFFFDb\"", raw.ToString());
        Assert.True(System.Text.Unicode.Utf8.IsValid(raw.Utf8.Span));
    }
}
