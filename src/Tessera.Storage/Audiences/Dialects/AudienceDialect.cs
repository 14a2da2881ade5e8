using Tessera.Storage.Audiences.Fragments;

namespace Tessera.Storage.Audiences.Dialects;

/// <summary>
/// Where DuckDB and PostgreSQL differ in the SQL an audience compiles to: reading JSON, casts, ordinal text
/// comparison, time arithmetic. Everything else the fragments write is the same for both.
/// </summary>
internal abstract class AudienceDialect
{
    /// <summary>
    /// A string that <c>decimal.TryParse(NumberStyles.Float, InvariantCulture)</c> accepts: optional white space
    /// and sign, digits with an optional point, an optional exponent.
    /// </summary>
    protected const string NumberPattern = @"^[ \t\n\r\f\v]*[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?[ \t\n\r\f\v]*$";

    /// <summary>The forms <c>JsonElement.TryGetDateTimeOffset</c> reads (ISO 8601: a date, optionally a time, fraction and offset).</summary>
    protected const string InstantPattern =
        @"^[0-9]{4}-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])(T([01][0-9]|2[0-3]):[0-5][0-9](:[0-5][0-9](\.[0-9]{1,16})?)?(Z|[+-]([01][0-9]|2[0-3]):[0-5][0-9])?)?$";

    /// <summary>The event's JSON text from its <c>raw</c> column (DuckDB keeps it compressed: <c>DuckDb.RawCodec</c>).</summary>
    public abstract string RawText(string raw);

    /// <summary>A JSON text (<see cref="RawText"/> of an event's, a computed value's) as the JSON functions take it.</summary>
    public abstract string Document(string raw);

    /// <summary>Appended to a subquery that computes <see cref="Document"/>, so the planner computes it once per row.</summary>
    public abstract string Fence { get; }

    /// <summary>A property path (already split, rooted at the message) as the value to bind for <see cref="Extract"/>.</summary>
    public abstract object PathParameter(IReadOnlyList<string> segments);

    /// <summary>The JSON value at a bound path of a document (SQL NULL when missing), to read with <see cref="JsonValue"/>.</summary>
    public abstract string Extract(string document, string path);

    /// <summary>The kind of a JSON value as <see cref="SqlValue.Kind"/> names it (SQL NULL for a missing value).</summary>
    public abstract string JsonKind(string value);

    /// <summary>A JSON value's string, or its JSON text when it is not a string.</summary>
    public abstract string JsonText(string value);

    /// <summary>The number of a JSON value whose kind and text are given: a number's value, a numeric string's, else NULL.</summary>
    public abstract string JsonNumber(string value, string kind, string text);

    /// <summary>The JSON text of a value, for comparing objects and arrays.</summary>
    public abstract string JsonTextOf(string value);

    /// <summary>
    /// A JSON value (a JSON or jsonb expression) as a <see cref="SqlValue"/>. Where kind, text, number or instant are
    /// already columns, they are used instead of computing them again.
    /// </summary>
    public SqlValue JsonValue(string value, string? kind = null, string? text = null, string? number = null, string? instant = null)
    {
        kind ??= JsonKind(value);
        text ??= JsonText(value);
        return new SqlValue(kind, text, number ?? JsonNumber(value, kind, text), instant ?? JsonInstant(kind, text), JsonTextOf(value));
    }

    /// <summary>The instant of a JSON string that is an ISO 8601 date, else NULL.</summary>
    public string JsonInstant(string kind, string text) => $"(CASE WHEN {kind} = 'string' THEN {InstantOfText(text)} END)";

    /// <summary>An SQL condition: the value at the bound path is an object (guards a path part that would index an array).</summary>
    public abstract string IsObjectAt(string document, string path);

    /// <summary>A text column as a JSON string value (identifier values).</summary>
    public SqlValue TextColumn(string column) => new("'string'", column, NumberOfText(column), InstantOfText(column), "NULL");

    /// <summary>The number a string reads as, or NULL.</summary>
    public abstract string NumberOfText(string text);

    /// <summary>The instant an ISO 8601 string names, or NULL.</summary>
    public abstract string InstantOfText(string text);

    public abstract string Decimal(string placeholder);

    public abstract string Timestamp(string placeholder);

    public abstract string Text(string placeholder);

    /// <summary>Text for an ordinal comparison (byte order).</summary>
    public abstract string Ordinal(string text);

    public abstract string Contains(string text, string part);

    public abstract string StartsWith(string text, string part);

    public abstract string EndsWith(string text, string part);

    /// <summary>Two JSON texts are the same object or array.</summary>
    public abstract string JsonEquals(string json, string placeholder);

    /// <summary><paramref name="timestamp"/> plus a bound number of microseconds.</summary>
    public abstract string PlusMicroseconds(string timestamp, string placeholder);

    /// <summary>A timestamp as the ISO text computed traits give (<c>yyyy-MM-ddTHH:mm:ss.fffZ</c>).</summary>
    public abstract string TimeText(string timestamp);

    /// <summary>A timestamp truncated to milliseconds, the instant <see cref="TimeText"/> names.</summary>
    public abstract string Milliseconds(string timestamp);

    /// <summary>sum / count rounded to 6 places, half to even (C#'s <c>Math.Round(decimal, 6)</c>).</summary>
    public abstract string Average6(string sum, string count);

    /// <summary>An aggregate: <paramref name="value"/> of the row first in (timestamp, seq) order; <paramref name="last"/>: the last.</summary>
    public abstract string ValueAtEnd(string value, string timestamp, string seq, bool last);

    /// <summary>A number-valued computed result typed the way <see cref="SqlValue.Number"/> is.</summary>
    public abstract string AsNumber(string expression);

    /// <summary>
    /// Each profile's first row of <paramref name="rows"/> (columns pid, ts, seq, raw) by (ts, seq), with the same
    /// columns (raw only when <paramref name="withRaw"/>).
    /// </summary>
    public abstract string FirstPerProfile(string rows, bool withRaw);

    /// <summary>
    /// A column that orders one profile's rows (c.pid, c.ts, c.seq) as (timestamp, seq) does, equal for equal pairs:
    /// what a sequence's steps compare.
    /// </summary>
    public abstract string LogOrder { get; }

    /// <summary>
    /// The current value of the trait named by <paramref name="name"/> (a placeholder) for every profile that has it, as
    /// a subquery aliased <c>t</c> with the columns of <c>profile_traits</c>.
    /// </summary>
    public virtual string CurrentTraits(string name) => $"(SELECT * FROM profile_traits c WHERE c.name = {name}) t";

    /// <summary>
    /// The store keeps events' top-level properties typed in <c>event_properties</c> (<see cref="Audiences.EventProperties"/>),
    /// so conditions on them read columns instead of the message JSON.
    /// </summary>
    public virtual bool HasEventProperties => false;

    /// <summary>Statements run before an audience query in the same transaction (PostgreSQL: memory for hashed subplans, no JIT).</summary>
    public virtual string? Prelude => null;
}
