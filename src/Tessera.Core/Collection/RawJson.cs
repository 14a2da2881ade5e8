using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace Tessera.Core.Collection;

/// <summary>
/// A message's JSON text as it is kept: UTF-8 bytes when it came in (over HTTP, from an import file, from the journal),
/// a string when a store handed it back. Events wait in memory between the journal and the store's commit, up to
/// 100,000 of them flat out, and their JSON as UTF-16 strings was two thirds of the live heap then
/// (docs/benchmarks.md); as UTF-8 it is half that, and the JSON parsers and DuckDB's appender take it without
/// transcoding. Equal when the texts are, whatever the form.
/// </summary>
public readonly struct RawJson : IEquatable<RawJson>
{
    private readonly object? _value; // string or byte[]

    public RawJson(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        _value = text;
    }

    /// <summary>The well-formed UTF-8 text in <paramref name="utf8"/>, which is not copied: the caller must not change it.</summary>
    public RawJson(byte[] utf8)
    {
        ArgumentNullException.ThrowIfNull(utf8);
        _value = utf8;
    }

    /// <summary>
    /// Copies <paramref name="utf8"/> into an array of its own. Ill-formed UTF-8 is replaced by U+FFFD, as decoding it
    /// to a string would: the stores take only well-formed text, and a message must not fail its commit over it.
    /// </summary>
    public static RawJson CopyOf(ReadOnlySpan<byte> utf8)
    {
        return new RawJson(System.Text.Unicode.Utf8.IsValid(utf8) ? utf8.ToArray() : Encoding.UTF8.GetBytes(Encoding.UTF8.GetString(utf8)));
    }

    public static implicit operator RawJson(string text) => new(text);

    /// <summary>True when held as UTF-8 (then <see cref="Utf8"/> costs nothing).</summary>
    public bool IsUtf8 => _value is byte[];

    /// <summary>The text as UTF-8; encoded (a new array) when it is held as a string.</summary>
    public ReadOnlyMemory<byte> Utf8 => _value switch
    {
        byte[] bytes => bytes,
        string text => Encoding.UTF8.GetBytes(text),
        _ => ReadOnlyMemory<byte>.Empty,
    };

    /// <summary>The length of the text in UTF-8 bytes.</summary>
    public int Utf8Length => _value switch
    {
        byte[] bytes => bytes.Length,
        string text => Encoding.UTF8.GetByteCount(text),
        _ => 0,
    };

    /// <summary>Whether the text contains <paramref name="ascii"/> (ASCII only: compared byte for byte when held as UTF-8).</summary>
    public bool Contains(string ascii)
    {
        if (_value is string text) { return text.Contains(ascii, StringComparison.Ordinal); }
        if (_value is not byte[] bytes) { return ascii.Length == 0; }
        Span<byte> needle = ascii.Length <= 64 ? stackalloc byte[ascii.Length] : new byte[ascii.Length];
        for (var i = 0; i < ascii.Length; i++) { needle[i] = ascii[i] < 0x80 ? (byte)ascii[i] : throw new ArgumentException("an ASCII marker is expected", nameof(ascii)); }
        return bytes.AsSpan().IndexOf(needle) >= 0;
    }

    public JsonDocument Parse(JsonDocumentOptions options = default) => _value switch
    {
        byte[] bytes => JsonDocument.Parse(bytes, options),
        string text => JsonDocument.Parse(text, options),
        _ => JsonDocument.Parse("", options),
    };

    public JsonNode? ParseNode() => _value switch
    {
        byte[] bytes => JsonNode.Parse(bytes),
        string text => JsonNode.Parse(text),
        _ => JsonNode.Parse(""),
    };

    /// <summary>
    /// The UTF-8 bytes as a writable span, for APIs that take <see cref="Span{T}"/> but only read it (DuckDB.NET's
    /// appender); empty when held as a string (use <see cref="ToString"/> then).
    /// </summary>
    public Span<byte> Utf8ForReadOnlyApi() => _value is byte[] bytes ? bytes : [];

    public override string ToString() => _value switch
    {
        string text => text,
        byte[] bytes => Encoding.UTF8.GetString(bytes),
        _ => "",
    };

    public bool Equals(RawJson other)
    {
        if (_value is string a && other._value is string b) { return string.Equals(a, b, StringComparison.Ordinal); }
        return Utf8.Span.SequenceEqual(other.Utf8.Span);
    }

    public override bool Equals(object? obj) => obj is RawJson other && Equals(other);

    public override int GetHashCode()
    {
        var hash = new HashCode();
        hash.AddBytes(Utf8.Span);
        return hash.ToHashCode();
    }

    public static bool operator ==(RawJson left, RawJson right) => left.Equals(right);

    public static bool operator !=(RawJson left, RawJson right) => !left.Equals(right);
}
