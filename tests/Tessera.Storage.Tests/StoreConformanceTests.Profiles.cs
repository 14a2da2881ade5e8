using Tessera.Core.Collection;
using Tessera.Core.Identity;
using Tessera.Core.Profiles;
using Tessera.Storage.Events;

namespace Tessera.Storage.Tests;

public abstract partial class StoreConformanceTests
{
    private static readonly Identifier User = new("user_id", "u-1");
    private static readonly Identifier SecondDevice = new("anonymous_id", "a-2");

    [Fact]
    public async Task appends_resolve_profiles_and_a_reopen_restores_the_same_profiles_traits_and_computed_values()
    {
        var store = await OpenAsync();
        await store.SaveComputedTraitAsync(new ComputedTraitDefinition("orders", ComputedFunction.Count, "Order Completed"), CancellationToken.None);
        await AppendAnnAsync(store);

        var before = Snapshot(store, User);
        Assert.Equal(4, before.Identifiers.Count);
        Assert.Equal(before.Id, store.Engine.FindByIdentifier(SecondDevice));
        Assert.Equal("\"pro\"", before.Traits["plan"]);
        Assert.Equal("2", before.Computed["orders"]);
        Assert.Single(before.MergedFrom);
        Assert.Equal((1L, 4L, 1L), store.Engine.Counts());
        var stored = await ReadAllAsync(store, new EventQuery(ProfileIds: [before.Id, .. before.MergedFrom]));
        Assert.Equal(["m-1", "m-2", "m-3", "m-4"], stored.Select(e => e.Message.MessageId).Order());
        await CloseAsync(store);

        var reopened = await OpenAsync();

        Assert.Equal(before, Snapshot(reopened, User));
        Assert.Equal((1L, 4L, 1L), reopened.Engine.Counts());
        // New events after a reopen keep resolving into the restored profiles.
        await reopened.AppendAsync([Message("m-5", MessageType.Track, """{"type":"track","messageId":"m-5","userId":"u-1","event":"Order Completed"}""")], CancellationToken.None);
        Assert.Equal("3", Snapshot(reopened, User).Computed["orders"]);
    }

    [Fact]
    public async Task a_large_append_resolves_and_stores_every_event_as_one_engine_given_the_whole_batch_would()
    {
        // 2,500 events: more than a store may resolve at a time while it writes (PostgreSQL: slices of 1,000), with
        // links and merges that span those slices (u-k ties together anonymous ids seen far apart in the batch).
        var events = Enumerable.Range(0, 2_500).Select(i =>
        {
            var userId = i % 7 == 0 ? $"u-{i % 40}" : null;
            var anonymousId = $"a-{i % 120}";
            return Message($"m-{i}", MessageType.Track,
                $$$"""{"type":"track","messageId":"m-{{{i}}}",{{{IdentifierJson(userId, anonymousId)}}}"event":"Viewed","properties":{"n":{{{i}}}}}""");
        }).ToList();
        var reference = NewEngine();
        var expected = reference.Process([.. events.Select((e, i) => ((long)i + 1, e))]);
        var store = await OpenAsync();

        await store.AppendAsync(events, CancellationToken.None);

        var stored = (await ReadAllAsync(store)).OrderBy(e => e.Seq).ToList();
        Assert.Equal(events.Select(e => e.MessageId), stored.Select(e => e.Message.MessageId));
        Assert.Equal(Enumerable.Range(1, 2_500).Select(i => (long)i), stored.Select(e => e.Seq));
        Assert.Equal(expected.Select(p => p.ProfileId), stored.Select(e => e.ProfileId));
        Assert.Equal(reference.Counts(), store.Engine.Counts());
        Assert.True(reference.Counts().Merges > 0, "the batch should merge profiles across its slices");
        var changes = await store.GetIdentityChangesAsync([.. expected.Select(p => p.ProfileId!).Distinct()], CancellationToken.None);
        Assert.Equal(expected.Sum(p => p.Changes.Count), changes.Count);
    }

    [Fact]
    public async Task the_identity_log_and_the_trait_history_read_back_in_order()
    {
        var store = await OpenAsync();
        await AppendAnnAsync(store);
        var profile = Snapshot(store, User);
        string[] ids = [profile.Id, .. profile.MergedFrom];

        var changes = await store.GetIdentityChangesAsync(ids, CancellationToken.None);
        var traits = await store.GetTraitHistoryAsync(ids, CancellationToken.None);

        Assert.Equal(changes.OrderBy(c => c.Seq).ThenBy(c => c.Ordinal), changes);
        Assert.Equal(2, changes.Count(c => c.Kind == IdentityChangeKind.Created));
        var merge = Assert.Single(changes, c => c.Kind == IdentityChangeKind.Merged);
        Assert.Equal((profile.Id, profile.MergedFrom[0]), (merge.ProfileId, merge.OtherProfileId));
        Assert.Contains(merge.Identifiers, i => i.Type == "email");
        Assert.Equal(4, changes.Count(c => c.Kind == IdentityChangeKind.Linked));
        Assert.All(changes, c => Assert.Equal($"message m-{c.Seq - changes[0].Seq + 1}", c.Cause));
        Assert.Equal(["\"free\"", "\"pro\""], traits.Where(t => t.Name == "plan").Select(t => t.Value.Value!.ToJsonString()));
        Assert.Equal(traits.OrderBy(t => t.Value.Seq), traits);
        Assert.Empty(await store.GetIdentityChangesAsync(["prof_none"], CancellationToken.None));
        Assert.Empty(await store.GetTraitHistoryAsync([], CancellationToken.None));
    }

    [Fact]
    public async Task a_dry_run_reresolve_reports_and_changes_nothing_and_an_applied_one_swaps_profiles_that_survive_a_reopen()
    {
        var store = await OpenAsync();
        await AppendAnnAsync(store);
        var merged = Snapshot(store, User);
        var separation = new IdentitySeparation(SecondDevice, [.. merged.Identifiers.Where(i => i != SecondDevice)], Now, "test: a shared device");

        var dry = await store.ReresolveAsync(store.Engine.Fresh(separations: [separation]), apply: false, null, CancellationToken.None);

        Assert.Equal((1, 2, 1), (dry.ProfilesBefore, dry.ProfilesAfter, dry.Splitting));
        Assert.Equal(merged, Snapshot(store, User));
        Assert.Single(await store.GetIdentityChangesAsync([merged.Id], CancellationToken.None), c => c.Kind == IdentityChangeKind.Merged);

        var applied = await store.ReresolveAsync(store.Engine.Fresh(separations: [separation]), apply: true, separation, CancellationToken.None);

        Assert.Equal((dry.ProfilesBefore, dry.ProfilesAfter, dry.Splitting, dry.IdentifiersMoved), (applied.ProfilesBefore, applied.ProfilesAfter, applied.Splitting, applied.IdentifiersMoved));
        await AssertSplitAsync(store);
        await CloseAsync(store);

        var reopened = await OpenAsync();

        Assert.Equal(separation.Identifier, Assert.Single(reopened.Engine.Separations).Identifier);
        await AssertSplitAsync(reopened);
        // The separation keeps holding for new messages that link the two again.
        await reopened.AppendAsync([Message("m-9", MessageType.Identify, """{"type":"identify","messageId":"m-9","anonymousId":"a-2","userId":"u-1"}""")], CancellationToken.None);
        Assert.NotEqual(reopened.Engine.FindByIdentifier(User), reopened.Engine.FindByIdentifier(SecondDevice));

        async Task AssertSplitAsync(ITesseraStore s)
        {
            var user = Snapshot(s, User);
            var device = s.Engine.FindByIdentifier(SecondDevice);
            Assert.NotNull(device);
            Assert.NotEqual(user.Id, device);
            Assert.DoesNotContain(SecondDevice, user.Identifiers);
            Assert.Empty(await s.GetIdentityChangesAsync([user.Id], CancellationToken.None).ContinueWith(t => t.Result.Where(c => c.Kind == IdentityChangeKind.Merged).ToList(), TaskScheduler.Default));
            // Every event is stored under the profile the replay gave it.
            Assert.Contains("m-3", (await ReadAllAsync(s, new EventQuery(ProfileIds: [device!]))).Select(e => e.Message.MessageId));
            Assert.Contains("m-1", (await ReadAllAsync(s, new EventQuery(ProfileIds: [user.Id]))).Select(e => e.Message.MessageId));
        }
    }

    [Fact]
    public async Task computed_trait_definitions_are_listed_deleted_and_recomputed_after_a_reopen()
    {
        var store = await OpenAsync();
        await AppendAnnAsync(store);
        await store.SaveComputedTraitAsync(new ComputedTraitDefinition("orders", ComputedFunction.Count, "Order Completed"), CancellationToken.None);
        await store.SaveComputedTraitAsync(new ComputedTraitDefinition("spent", ComputedFunction.Sum, "Order Completed", Property: "revenue"), CancellationToken.None);

        Assert.Equal("2", Snapshot(store, User).Computed["orders"]);
        Assert.Equal("10", Snapshot(store, User).Computed["spent"]);
        Assert.True(await store.DeleteComputedTraitAsync("orders", CancellationToken.None));
        Assert.False(await store.DeleteComputedTraitAsync("orders", CancellationToken.None));
        await CloseAsync(store);

        var reopened = await OpenAsync();

        Assert.Equal(["spent"], (await reopened.ListComputedTraitsAsync(CancellationToken.None)).Select(d => d.Name));
        Assert.Equal(["spent"], reopened.Engine.ComputedDefinitions.Select(d => d.Name));
        Assert.Equal("10", Snapshot(reopened, User).Computed["spent"]);
    }

    /// <summary>
    /// Ann on two devices: a-1 orders then identifies as u-1 with her email; a-2 orders then gives the same email,
    /// which merges the second profile into the first.
    /// </summary>
    protected static async Task AppendAnnAsync(ITesseraStore store)
    {
        await store.AppendAsync(
        [
            Message("m-1", MessageType.Track, """{"type":"track","messageId":"m-1","anonymousId":"a-1","event":"Order Completed","properties":{"revenue":10}}"""),
            Message("m-2", MessageType.Identify, """{"type":"identify","messageId":"m-2","anonymousId":"a-1","userId":"u-1","traits":{"email":"Ann@X.com","plan":"free"}}"""),
        ], CancellationToken.None);
        await store.AppendAsync(
        [
            Message("m-3", MessageType.Track, """{"type":"track","messageId":"m-3","anonymousId":"a-2","event":"Order Completed"}"""),
            Message("m-4", MessageType.Identify, """{"type":"identify","messageId":"m-4","anonymousId":"a-2","traits":{"email":"ann@x.com","plan":"pro"}}"""),
        ], CancellationToken.None);
    }

    /// <summary>A message whose typed columns follow its raw JSON (which is what the profile engine reads).</summary>
    protected static CollectedEvent Message(string messageId, MessageType type, string raw)
    {
        using var json = System.Text.Json.JsonDocument.Parse(raw);
        string? Text(string name) => json.RootElement.TryGetProperty(name, out var v) ? v.GetString() : null;
        return Event(messageId, type: type, name: Text("event"), userId: Text("userId"), anonymousId: Text("anonymousId")) with { Raw = raw };
    }

    /// <summary>The profile owning <paramref name="identifier"/>, in comparable form.</summary>
    protected static ProfileSnapshot Snapshot(ITesseraStore store, Identifier identifier)
    {
        var id = store.Engine.FindByIdentifier(identifier) ?? throw new InvalidOperationException($"no profile owns {identifier}");
        var view = store.Engine.Get(id)!;
        return new ProfileSnapshot(
            view.Id,
            [.. view.Identifiers.OrderBy(i => i.ToString(), StringComparer.Ordinal)],
            view.Traits.ToDictionary(t => t.Key, t => t.Value.Value?.ToJsonString()),
            view.Computed.ToDictionary(t => t.Key, t => t.Value?.ToJsonString()),
            [.. view.MergedFrom.Order()]);
    }

    protected sealed record ProfileSnapshot(string Id, List<Identifier> Identifiers, Dictionary<string, string?> Traits, Dictionary<string, string?> Computed, List<string> MergedFrom)
    {
        public bool Equals(ProfileSnapshot? other) =>
            other is not null && Id == other.Id && Identifiers.SequenceEqual(other.Identifiers) && MergedFrom.SequenceEqual(other.MergedFrom)
            && Traits.Count == other.Traits.Count && Traits.All(t => other.Traits.TryGetValue(t.Key, out var v) && v == t.Value)
            && Computed.Count == other.Computed.Count && Computed.All(t => other.Computed.TryGetValue(t.Key, out var v) && v == t.Value);

        public override int GetHashCode() => Id.GetHashCode(StringComparison.Ordinal);
    }
}
