using Microsoft.Extensions.Logging.Testing;
using Tessera.Core.Collection;
using Tessera.Core.Identity;
using Tessera.Core.Profiles;

namespace Tessera.Storage.Tests;

/// <summary>
/// What every store must do, written once and run against each store by a subclass (<see cref="DuckDbStoreTests"/>,
/// <see cref="PostgresStoreTests"/>). Each test gets its own empty store location; <see cref="OpenAsync"/> opens it,
/// and calling it again after disposing is a reopen. To add a storage behaviour, add a fact to the partial file of
/// its area (<c>StoreConformanceTests.{Area}.cs</c>); both stores then run it.
/// </summary>
public abstract partial class StoreConformanceTests : IAsyncLifetime
{
    private readonly List<ITesseraStore> _open = [];

    protected static readonly DateTimeOffset Now = TruncateToMicroseconds(DateTimeOffset.UtcNow);

    /// <summary>What the stores this test opens log (each subclass gives it to the stores it makes).</summary>
    protected FakeLogger StoreLog { get; } = new();

    /// <summary>The latest schema version the store's migrations reach.</summary>
    protected abstract int LatestSchemaVersion { get; }

    /// <summary>A store over this test's location, not yet opened.</summary>
    protected abstract ITesseraStore CreateStore(TimeSpan dedupWindow, int? migrateUpTo);

    /// <summary>Writes events straight into a schema version 1 database, with that version's SQL, as an old release would have.</summary>
    protected abstract Task InsertAtVersion1Async(IReadOnlyList<CollectedEvent> events);

    /// <summary>The highest version in the store's <c>schema_migrations</c>.</summary>
    protected abstract Task<int> SchemaVersionAsync();

    protected virtual Task CleanUpAsync() => Task.CompletedTask;

    /// <summary>Opens (or reopens) this test's store; it is disposed at the end of the test unless the test does it.</summary>
    protected async Task<ITesseraStore> OpenAsync(TimeSpan? dedupWindow = null, int? migrateUpTo = null)
    {
        var store = CreateStore(dedupWindow ?? TimeSpan.FromDays(7), migrateUpTo);
        _open.Add(store);
        await store.OpenAsync(CancellationToken.None);
        return store;
    }

    /// <summary>Disposes a store opened by <see cref="OpenAsync"/>, before reopening the same location.</summary>
    protected async Task CloseAsync(ITesseraStore store)
    {
        _open.Remove(store);
        await store.DisposeAsync();
    }

    public Task InitializeAsync() => Task.CompletedTask;

    public async Task DisposeAsync()
    {
        foreach (var store in _open) { await store.DisposeAsync(); }
        await CleanUpAsync();
    }

    /// <summary>An engine with the default rules, as <c>tessera serve</c> makes without a rules file.</summary>
    protected static ProfileEngine NewEngine() => new(IdentityRules.Default, ProfileRules.Default);

    /// <summary>A valid track message with every column filled; override what a test is about.</summary>
    protected static CollectedEvent Event(
        string messageId,
        string sourceId = "src_a",
        MessageType type = MessageType.Track,
        string? name = "Order Completed",
        string? userId = "u-1",
        string? anonymousId = "a-1",
        DateTimeOffset? receivedAt = null) =>
        new(
            MessageId: messageId,
            SourceId: sourceId,
            Type: type,
            Event: name,
            UserId: userId,
            AnonymousId: anonymousId,
            GroupId: "g-1",
            PreviousId: "p-0",
            Timestamp: Now.AddSeconds(-3),
            OriginalTimestamp: Now.AddSeconds(-4),
            SentAt: Now.AddSeconds(-1),
            ReceivedAt: receivedAt ?? Now,
            Raw: $$$"""{"type":"{{{type.Name()}}}","messageId":"{{{messageId}}}",{{{IdentifierJson(userId, anonymousId)}}}"event":"{{{name}}}","properties":{"revenue":12.5,"text":"é ü \u0000 ✓"}}""");

    /// <summary>The identifiers as the raw message carries them: the profile engine reads them from there.</summary>
    protected static string IdentifierJson(string? userId, string? anonymousId) =>
        (userId is null ? "" : $"\"userId\":\"{userId}\",") + (anonymousId is null ? "" : $"\"anonymousId\":\"{anonymousId}\",");

    protected static IReadOnlyList<CollectedEvent> Events(int count, string prefix = "m", string sourceId = "src_a") =>
        Enumerable.Range(0, count).Select(i => Event($"{prefix}-{i}", sourceId)).ToList();

    protected static async Task<List<Storage.Events.StoredEvent>> ReadAllAsync(ITesseraStore store, Storage.Events.EventQuery? query = null)
    {
        var all = new List<Storage.Events.StoredEvent>();
        var q = (query ?? new Storage.Events.EventQuery()) with { Limit = 1000 };
        while (true)
        {
            var page = await store.QueryAsync(q, CancellationToken.None);
            all.AddRange(page.Items);
            if (page.NextCursor is null) { return all; }
            q = q with { Before = page.NextCursor };
        }
    }

    private static DateTimeOffset TruncateToMicroseconds(DateTimeOffset t) => new(t.UtcTicks - t.UtcTicks % 10, TimeSpan.Zero);
}
