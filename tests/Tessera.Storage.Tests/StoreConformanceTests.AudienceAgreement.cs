using Tessera.Core.Audiences;
using Tessera.Core.Conditions;

namespace Tessera.Storage.Tests;

public abstract partial class StoreConformanceTests
{
    /// <summary>
    /// The SQL and the in-memory evaluations agree: random people and events go in through <c>AppendAsync</c>, then
    /// for many random definitions (every node kind, nested) the store's members equal the live profiles for which
    /// <see cref="AudienceEvaluator"/> holds, at a fixed now. The seed is printed on failure; set
    /// <c>TESSERA_AUDIENCE_SEED</c> to replay one.
    /// </summary>
    [Fact]
    public async Task sql_and_in_memory_evaluation_choose_the_same_members_on_random_data_and_definitions()
    {
        var (seed, data, store, segments, memory) = await RandomAgreementAsync();

        var checkedDefinitions = 0;
        var nonTrivial = 0;
        for (var i = 0; i < 160; i++)
        {
            var definition = data.Definition();
            var expected = memory.Members(definition);
            List<string> actual;
            try
            {
                actual = await store.ListAudienceMembersAsync(definition, id => segments.GetValueOrDefault(id), RandomAudienceData.Now, CancellationToken.None).ToListAsync();
            }
            catch (StoreException e)
            {
                Assert.Fail($"seed {seed}, definition {i}: {AudienceDefinition.ToJson(definition).ToJsonString()}\n{e.Message}\n{store.ExplainAudienceSql(definition, id => segments.GetValueOrDefault(id), RandomAudienceData.Now)}");
                throw;
            }

            if (!expected.SequenceEqual(actual))
            {
                Assert.Fail($"""
                    seed {seed} (TESSERA_AUDIENCE_SEED={seed} replays it), definition {i}:
                    {AudienceDefinition.ToJson(definition).ToJsonString()}
                    only in memory: {string.Join(", ", expected.Except(actual))}
                    only in SQL: {string.Join(", ", actual.Except(expected))}
                    segments: {string.Join("; ", segments.Select(s => $"{s.Key} = {AudienceDefinition.ToJson(s.Value).ToJsonString()}"))}
                    {store.ExplainAudienceSql(definition, id => segments.GetValueOrDefault(id), RandomAudienceData.Now)}
                    """);
            }

            var preview = await store.PreviewAudienceAsync(definition, id => segments.GetValueOrDefault(id), RandomAudienceData.Now, 5, CancellationToken.None);
            Assert.Equal(expected.Count, preview.Count);
            Assert.Equal(expected.Take(5), preview.Sample);
            checkedDefinitions++;
            if (expected.Count > 0 && expected.Count < memory.Profiles) { nonTrivial++; }
        }

        // The generator must produce definitions that split the profiles, or the agreement proves little.
        Assert.Equal(160, checkedDefinitions);
        Assert.True(nonTrivial > 60, $"seed {seed}: only {nonTrivial} of 160 definitions chose some but not all of {memory.Profiles} profiles");
    }

    /// <summary>
    /// The shapes the SQL compiles with shortcuts agree with memory too: an "and" led by a trait that only its holders pass
    /// (the event reads keep to those profiles, however the other parts use them: negated, counts of zero, sums, nested),
    /// and sequences whose steps include a first one (looked for only among profiles with the other steps' events).
    /// </summary>
    [Fact]
    public async Task sql_and_in_memory_agree_on_definitions_scoped_by_a_trait_and_on_sequences_with_a_first_step()
    {
        var (seed, data, store, segments, memory) = await RandomAgreementAsync();
        var plan = new TraitCondition("plan", "in", System.Text.Json.JsonSerializer.SerializeToElement(new[] { "pro", "free" }));
        var definitions = new List<AudienceCondition>();
        for (var i = 0; i < 40; i++)
        {
            definitions.Add(new AllOf([plan, data.Definition(2)]));
            definitions.Add(new AllOf([data.Definition(1), plan, new NotCondition(data.Definition(1))]));
            definitions.Add(new SequenceCondition(
                [
                    new SequenceStep(RandomAudienceData.EventNames[i % 4], [], First: true),
                    new SequenceStep(RandomAudienceData.EventNames[(i / 4) % 4], i % 3 == 0 ? [new PropertyFilter("revenue", "gt", System.Text.Json.JsonSerializer.SerializeToElement(40))] : []),
                    .. i % 5 == 0 ? [new SequenceStep(RandomAudienceData.EventNames[(i + 1) % 4], [], First: i % 2 == 0)] : Array.Empty<SequenceStep>(),
                ],
                TimeSpan.FromDays(1 + (i % 30))));
        }

        foreach (var definition in definitions)
        {
            var expected = memory.Members(definition);
            var actual = await store.ListAudienceMembersAsync(definition, id => segments.GetValueOrDefault(id), RandomAudienceData.Now, CancellationToken.None).ToListAsync();
            Assert.True(expected.SequenceEqual(actual), $"""
                seed {seed} (TESSERA_AUDIENCE_SEED={seed} replays it): {AudienceDefinition.ToJson(definition).ToJsonString()}
                only in memory: {string.Join(", ", expected.Except(actual))}
                only in SQL: {string.Join(", ", actual.Except(expected))}
                {store.ExplainAudienceSql(definition, id => segments.GetValueOrDefault(id), RandomAudienceData.Now)}
                """);
        }

        Assert.Contains(definitions, d => memory.Members(d).Count is > 0 and var n && n < memory.Profiles);
    }

    /// <summary>The in-memory evaluation over every live profile of the store, as a function of the definition.</summary>
    /// <summary>
    /// A store holding the random people and events of one seed (<c>TESSERA_AUDIENCE_SEED</c> replays one) with the
    /// random computed traits, appended in several batches so merges span batches as well as happening inside one; and
    /// the same people evaluated in memory.
    /// </summary>
    private async Task<(int Seed, RandomAudienceData Data, ITesseraStore Store, Dictionary<string, AudienceCondition> Segments, InMemoryAudience Memory)> RandomAgreementAsync()
    {
        var seed = Environment.GetEnvironmentVariable("TESSERA_AUDIENCE_SEED") is { Length: > 0 } fixedSeed
            ? int.Parse(fixedSeed, System.Globalization.CultureInfo.InvariantCulture)
            : Random.Shared.Next();
        var data = new RandomAudienceData(seed);
        var store = await OpenAsync(dedupWindow: TimeSpan.FromDays(1000));
        foreach (var definition in RandomAudienceData.Computed) { await store.SaveComputedTraitAsync(definition, CancellationToken.None); }
        foreach (var batch in data.Messages(people: 70).Chunk(97)) { await store.AppendAsync(batch, CancellationToken.None); }
        var segments = data.Segments();
        return (seed, data, store, segments, await InMemoryAsync(store, segments, RandomAudienceData.Now));
    }

    private static async Task<InMemoryAudience> InMemoryAsync(ITesseraStore store, IReadOnlyDictionary<string, AudienceCondition> segments, DateTimeOffset now)
    {
        var live = store.Engine.StateSnapshot().ProfileIds.Where(p => p.Id == p.Live).Select(p => p.Id).Order(StringComparer.Ordinal).ToList();
        var events = StoredAudienceFacts.ByLiveProfile(await ReadAllAsync(store), store.Engine);
        var facts = live.Select(id => (id, new StoredAudienceFacts(store.Engine.Get(id, now)!, events.GetValueOrDefault(id) ?? [], segments))).ToList();
        return new InMemoryAudience(facts, now);
    }

    private sealed class InMemoryAudience(List<(string Id, StoredAudienceFacts Facts)> profiles, DateTimeOffset now)
    {
        public int Profiles => profiles.Count;

        public List<string> Members(AudienceCondition definition) =>
            [.. profiles.Where(p => AudienceEvaluator.Evaluate(definition, p.Facts, now)).Select(p => p.Id)];
    }
}
