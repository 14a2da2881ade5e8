namespace Tessera.Storage.Audiences.Dialects;

/// <summary>
/// DuckDB: paths are bound JSON Pointers (<c>/properties/revenue</c>) read with the <c>json_*</c> functions;
/// numbers are DECIMAL(38, 12) (exact for 26 integer and 12 fraction digits); text compares in byte order.
/// </summary>
internal sealed class DuckDbAudienceDialect : AudienceDialect
{
    public static readonly DuckDbAudienceDialect Instance = new();

    private const string Decimal38 = "DECIMAL(38, 12)";
    private const string NumberTypes = "('BIGINT', 'UBIGINT', 'HUGEINT', 'DOUBLE')";

    public override string RawText(string raw) => $"tessera_raw({raw})";

    public override string Document(string raw) => raw;

    public override string Fence => "";

    // RFC 6901: '~' and '/' inside a name are escaped, so any property name reaches exactly that property.
    public override object PathParameter(IReadOnlyList<string> segments) =>
        string.Concat(segments.Select(s => "/" + s.Replace("~", "~0", StringComparison.Ordinal).Replace("/", "~1", StringComparison.Ordinal)));

    public override string Extract(string document, string path) => $"json_extract({document}, {path})";

    public override string JsonKind(string value) =>
        $"(CASE json_type({value}) WHEN 'VARCHAR' THEN 'string' WHEN 'DOUBLE' THEN 'number' WHEN 'BIGINT' THEN 'number' WHEN 'UBIGINT' THEN 'number' WHEN 'HUGEINT' THEN 'number' WHEN 'BOOLEAN' THEN 'boolean' WHEN 'OBJECT' THEN 'object' WHEN 'ARRAY' THEN 'array' WHEN 'NULL' THEN 'null' END)";

    public override string JsonText(string value) => $"json_extract_string({value}, '$')";

    // DuckDB reads JSON numbers as doubles (exact to about 15 significant digits); JSON to DECIMAL is its fast cast,
    // VARCHAR to DECIMAL(38, x) is many times slower.
    public override string JsonNumber(string value, string kind, string text) =>
        $"(CASE {kind} WHEN 'number' THEN TRY_CAST(CAST({value} AS JSON) AS {Decimal38}) WHEN 'string' THEN {NumberOfText(text)} END)";

    public override string JsonTextOf(string value) => $"CAST(CAST({value} AS JSON) AS VARCHAR)";

    public override string IsObjectAt(string document, string path) => $"json_type({document}, {path}) = 'OBJECT'";

    public override string NumberOfText(string text) => $"(CASE WHEN regexp_full_match({text}, '{NumberPattern}') THEN TRY_CAST(trim({text}) AS {Decimal38}) END)";

    public override string InstantOfText(string text) => $"(CASE WHEN regexp_full_match({text}, '{InstantPattern}') THEN TRY_CAST({text} AS TIMESTAMPTZ) END)";

    public override string Decimal(string placeholder) => $"CAST({placeholder} AS {Decimal38})";

    public override string Timestamp(string placeholder) => $"CAST({placeholder} AS TIMESTAMPTZ)";

    public override string Text(string placeholder) => $"CAST({placeholder} AS VARCHAR)";

    public override string Ordinal(string text) => text;

    public override string Contains(string text, string part) => $"contains({text}, {part})";

    public override string StartsWith(string text, string part) => $"starts_with({text}, {part})";

    public override string EndsWith(string text, string part) => $"ends_with({text}, {part})";

    public override string JsonEquals(string json, string placeholder) => $"(json({json}) = json({placeholder}))";

    public override string PlusMicroseconds(string timestamp, string placeholder) => $"({timestamp} + to_microseconds(CAST({placeholder} AS BIGINT)))";

    public override string TimeText(string timestamp) => $"strftime(timezone('UTC', {timestamp}), '%Y-%m-%dT%H:%M:%S.%gZ')";

    public override string Milliseconds(string timestamp) => $"date_trunc('millisecond', {timestamp})";

    // Exact: the sum in units of 1e-12 as HUGEINT, divided by count * 1e6 with the remainder deciding the rounding.
    // (Decimal division in DuckDB goes through DOUBLE.)
    public override string Average6(string sum, string count)
    {
        var scaled = $"CAST({sum} * 1000000000000 AS HUGEINT)";
        var divisor = $"(CAST({count} AS HUGEINT) * 1000000)";
        var quotient = $"({scaled} // {divisor})";
        var remainder = $"({scaled} - {quotient} * {divisor})";
        var rounded = $"({quotient} + CASE WHEN 2 * abs({remainder}) > {divisor} OR (2 * abs({remainder}) = {divisor} AND {quotient} % 2 <> 0) THEN sign({scaled}) ELSE 0 END)";
        return $"CAST(CAST({rounded} AS DECIMAL(38, 6)) * CAST(0.000001 AS DECIMAL(7, 6)) AS {Decimal38})";
    }

    public override string ValueAtEnd(string value, string timestamp, string seq, bool last) =>
        $"{(last ? "arg_max" : "arg_min")}({value}, ({timestamp}, {seq}))";

    // A hash aggregate: several times faster than row_number() over the profile's rows.
    public override string FirstPerProfile(string rows, bool withRaw) =>
        $"SELECT x.pid, min(x.ts) AS ts, arg_min(x.seq, (x.ts, x.seq)) AS seq{(withRaw ? ", arg_min(x.raw, (x.ts, x.seq)) AS raw" : "")} FROM ({rows}) x GROUP BY x.pid";

    // Microseconds since the epoch, then the seq (below 10^12): one HUGEINT instead of a window function.
    public override string LogOrder => "(CAST(epoch_us(c.ts) AS HUGEINT) * 1000000000000 + c.seq)";

    // Values appended since the last fold (DuckDbStore.FoldTraitUpdates) are newer than profile_traits' and win.
    public override string CurrentTraits(string name) => $"""
        (SELECT c.profile_id, c.name, c.value, c.kind, c.text, c.num, c.instant FROM profile_traits c
            WHERE c.name = {name} AND NOT (c.profile_id IN (SELECT u.profile_id FROM profile_trait_updates u WHERE u.name = {name}))
         UNION ALL
         SELECT u.profile_id, u.name, u.value, u.kind, u.text, u.num, u.instant FROM profile_trait_updates u WHERE u.name = {name}
            QUALIFY row_number() OVER (PARTITION BY u.profile_id ORDER BY u.version DESC) = 1) t
        """;

    public override bool HasEventProperties => true;

    public override string AsNumber(string expression) => $"CAST({expression} AS {Decimal38})";
}
