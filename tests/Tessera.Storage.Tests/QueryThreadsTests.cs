using Microsoft.Extensions.Time.Testing;
using Tessera.Storage.DuckDb;

namespace Tessera.Storage.Tests;

/// <summary>DuckDB's threads raised for the queries that pay for them and lowered again (<see cref="QueryThreads"/>).</summary>
public sealed class QueryThreadsTests
{
    [Fact]
    public void overlapping_queries_raise_the_threads_once_and_they_are_lowered_only_a_while_after_the_last_ended()
    {
        var time = new FakeTimeProvider();
        var set = new List<int>();
        var threads = new QueryThreads(4, set.Add, time);
        Assert.Equal(1, threads.Initial);

        var first = threads.Enter();
        var second = threads.Enter();
        Assert.Equal([4], set);
        Assert.True(threads.Raised);

        first.Dispose();
        time.Advance(TimeSpan.FromMinutes(1));
        Assert.False(threads.LowerIfIdle());
        second.Dispose();
        time.Advance(QueryThreads.LowerAfter - TimeSpan.FromMilliseconds(1));
        Assert.False(threads.LowerIfIdle());
        Assert.Equal([4], set);

        time.Advance(TimeSpan.FromMilliseconds(1));
        Assert.True(threads.LowerIfIdle());
        Assert.Equal([4, 1], set);
        Assert.False(threads.Raised);
        Assert.False(threads.LowerIfIdle());

        using (threads.Enter()) { }
        Assert.Equal([4, 1, 4], set);
    }

    [Fact]
    public void with_one_thread_there_is_nothing_to_raise_or_lower()
    {
        var set = new List<int>();
        var threads = new QueryThreads(1, set.Add, new FakeTimeProvider());
        Assert.Equal(1, threads.Initial);
        using (threads.Enter()) { Assert.True(threads.Raised); }
        Assert.False(threads.LowerIfIdle());
        Assert.Empty(set);
    }

    [Fact]
    public void a_failed_raise_leaves_the_threads_lowered_and_the_next_query_tries_again()
    {
        var calls = 0;
        var threads = new QueryThreads(2, n => { if (++calls == 1) { throw new InvalidOperationException("closing"); } }, new FakeTimeProvider());
        Assert.Throws<InvalidOperationException>(() => threads.Enter());
        Assert.False(threads.Raised);
        using (threads.Enter()) { Assert.True(threads.Raised); }
        Assert.Equal(2, calls);
    }
}
