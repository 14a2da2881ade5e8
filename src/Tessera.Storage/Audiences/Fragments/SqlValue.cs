namespace Tessera.Storage.Audiences.Fragments;

/// <summary>
/// A JSON value as SQL expressions, the shape <see cref="ValueTest"/> compares. <see cref="Kind"/> is one of
/// <c>string number boolean object array null</c>, or SQL NULL when the value is missing; <see cref="Text"/> is the
/// string's value or, for other kinds, the JSON text; <see cref="Number"/> is the value of a number or of a string
/// that reads as one; <see cref="Instant"/> the instant of a string that is an ISO 8601 date; <see cref="Json"/> the
/// JSON text, for comparing objects and arrays.
/// </summary>
internal sealed record SqlValue(string Kind, string Text, string Number, string Instant, string Json)
{
    /// <summary>Present: there and not JSON null, as <c>PropertyFilter.TryRead</c> and <c>TryTrait</c> mean it.</summary>
    public string Present => $"({Kind} IS NOT NULL AND {Kind} <> 'null')";
}
