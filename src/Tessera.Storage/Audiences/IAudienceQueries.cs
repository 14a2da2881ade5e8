using Tessera.Core.Audiences;

namespace Tessera.Storage.Audiences;

/// <summary>
/// Batch evaluation of audience definitions in the store's SQL: the definition is compiled to one query over the
/// live profiles (every value, name and path bound as a parameter) with the meaning of <see cref="AudienceEvaluator"/>.
/// <c>segments</c> resolves <c>{"segment": id}</c> references (null: no such audience), whose definitions
/// are inlined up to <see cref="AudienceDefinition.MaxDepth"/> levels; <c>now</c> anchors relative windows.
/// </summary>
public interface IAudienceQueries
{
    /// <summary>How many live profiles are members, and the first <paramref name="sampleSize"/> of them by id (ordinal).</summary>
    Task<AudiencePreview> PreviewAudienceAsync(
        AudienceCondition definition, Func<string, AudienceCondition?> segments, DateTimeOffset now, int sampleSize, CancellationToken cancellationToken);

    /// <summary>Every member's profile id, by id (ordinal), streamed: for exports and a new audience's first membership.</summary>
    IAsyncEnumerable<string> ListAudienceMembersAsync(
        AudienceCondition definition, Func<string, AudienceCondition?> segments, DateTimeOffset now, CancellationToken cancellationToken);

    /// <summary>The members query as this store would run it, with its parameters listed apart: for debugging and EXPLAIN.</summary>
    AudienceSql ExplainAudienceSql(AudienceCondition definition, Func<string, AudienceCondition?> segments, DateTimeOffset now);
}

/// <summary>The size of an audience and a sample of its members.</summary>
public sealed record AudiencePreview(long Count, IReadOnlyList<string> Sample)
{
    /// <summary>Reads the rows of <c>AudienceQuery.Preview</c> (a member id and the total count on every row), keeping the first <paramref name="sampleSize"/> ids.</summary>
    internal static async Task<AudiencePreview> ReadAsync(System.Data.Common.DbDataReader reader, int sampleSize, CancellationToken cancellationToken)
    {
        long count = 0;
        var sample = new List<string>();
        while (await reader.ReadAsync(cancellationToken))
        {
            count = reader.GetInt64(1);
            if (sample.Count < sampleSize) { sample.Add(reader.GetString(0)); }
        }

        return new AudiencePreview(count, sample);
    }
}
