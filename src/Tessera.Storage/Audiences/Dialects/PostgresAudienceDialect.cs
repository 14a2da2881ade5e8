namespace Tessera.Storage.Audiences.Dialects;

/// <summary>
/// PostgreSQL: the event's raw text is read as <c>jsonb</c> once per row (in a fenced subquery), paths are bound
/// <c>text[]</c> for <c>#&gt;</c>; numbers are <c>numeric</c> (exact); text compares <c>COLLATE "C"</c> (byte order).
/// </summary>
internal sealed class PostgresAudienceDialect : AudienceDialect
{
    public static readonly PostgresAudienceDialect Instance = new();

    public override string RawText(string raw) => raw;

    public override string Document(string raw) => $"{raw}::jsonb";

    // OFFSET 0 keeps the planner from pulling the subquery up and parsing the JSON once per use.
    public override string Fence => " OFFSET 0";

    public override object PathParameter(IReadOnlyList<string> segments) => segments.ToArray();

    public override string Extract(string document, string path) => $"({document} #> {path}::text[])";

    public override string JsonKind(string value) => $"jsonb_typeof({value})";

    public override string JsonText(string value) => $"({value} #>> '{{}}')";

    public override string JsonNumber(string value, string kind, string text) =>
        $"(CASE {kind} WHEN 'number' THEN {text}::numeric WHEN 'string' THEN {NumberOfText(text)} END)";

    public override string JsonTextOf(string value) => $"({value})::text";

    public override string IsObjectAt(string document, string path) => $"jsonb_typeof({document} #> {path}::text[]) = 'object'";

    public override string NumberOfText(string text) => $@"(CASE WHEN {text} ~ '{NumberPattern}' THEN btrim({text}, E' \t\n\r\f\013')::numeric END)";

    public override string InstantOfText(string text) => $"(CASE WHEN {text} ~ '{InstantPattern}' THEN tessera_try_timestamptz({text}) END)";

    public override string Decimal(string placeholder) => $"{placeholder}::numeric";

    public override string Timestamp(string placeholder) => $"{placeholder}::timestamptz";

    public override string Text(string placeholder) => $"{placeholder}::text";

    public override string Ordinal(string text) => $"({text}) COLLATE \"C\"";

    public override string Contains(string text, string part) => $"(strpos({text}, {part}::text) > 0)";

    public override string StartsWith(string text, string part) => $"starts_with({text}, {part}::text)";

    public override string EndsWith(string text, string part) => $"(right({text}, char_length({part}::text)) = {part}::text)";

    public override string JsonEquals(string json, string placeholder) => $"(({json})::jsonb = {placeholder}::jsonb)";

    public override string PlusMicroseconds(string timestamp, string placeholder) => $"({timestamp} + {placeholder}::bigint * interval '1 microsecond')";

    public override string TimeText(string timestamp) => $"to_char({timestamp} AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"')";

    public override string Milliseconds(string timestamp) => $"date_trunc('milliseconds', {timestamp})";

    // numeric is exact: div() truncates toward zero, the remainder decides the rounding, half to even.
    public override string Average6(string sum, string count)
    {
        var scaled = $"(({sum}) * 1000000)";
        var quotient = $"div({scaled}, {count})";
        var remainder = $"({scaled} - {quotient} * {count})";
        return $"(({quotient} + CASE WHEN 2 * abs({remainder}) > {count} OR (2 * abs({remainder}) = {count} AND mod({quotient}, 2) <> 0) THEN sign({scaled}) ELSE 0 END) * 0.000001)";
    }

    public override string ValueAtEnd(string value, string timestamp, string seq, bool last)
    {
        var direction = last ? " DESC" : "";
        return $"(array_agg({value} ORDER BY {timestamp}{direction}, {seq}{direction}))[1]";
    }

    public override string FirstPerProfile(string rows, bool withRaw) =>
        $"SELECT DISTINCT ON (x.pid) x.pid, x.ts, x.seq{(withRaw ? ", x.raw" : "")} FROM ({rows}) x ORDER BY x.pid, x.ts, x.seq";

    public override string LogOrder => "dense_rank() OVER (PARTITION BY c.pid ORDER BY c.ts, c.seq)";

    public override string AsNumber(string expression) => $"({expression})::numeric";

    // Audience queries are set work: hashed subplans need the memory, JIT costs more than it saves at this size, and a
    // nested loop over a grouped subquery the planner thinks has 200 rows (it cannot know) is the one plan that turns
    // seconds into minutes.
    public override string? Prelude => "SET LOCAL work_mem = '256MB'; SET LOCAL jit = off; SET LOCAL enable_nestloop = off";
}
