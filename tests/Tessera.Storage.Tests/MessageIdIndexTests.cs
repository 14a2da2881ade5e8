using Tessera.Storage.Events;

namespace Tessera.Storage.Tests;

/// <summary>The embedded store's dedup index: (source, messageId) hashes with their receive time, in native memory.</summary>
public sealed class MessageIdIndexTests
{
    private static readonly DateTimeOffset T0 = new(2026, 12, 4, 12, 0, 0, TimeSpan.Zero);

    [Fact]
    public void a_resend_within_the_window_is_found_and_one_after_it_or_from_another_source_is_not()
    {
        using var index = new MessageIdIndex(TimeSpan.FromDays(7));
        index.Add(MessageIdIndex.Key("src-a", "m-1"), T0);

        Assert.True(index.Contains(MessageIdIndex.Key("src-a", "m-1"), T0.AddDays(7).AddTicks(-1)));
        // A message received before the stored one (a backlog replayed out of order) is a resend too.
        Assert.True(index.Contains(MessageIdIndex.Key("src-a", "m-1"), T0.AddDays(-30)));
        Assert.False(index.Contains(MessageIdIndex.Key("src-a", "m-1"), T0.AddDays(7)));
        Assert.False(index.Contains(MessageIdIndex.Key("src-b", "m-1"), T0));
        Assert.False(index.Contains(MessageIdIndex.Key("src-a", "m-2"), T0));
        Assert.Equal(1, index.Count);
    }

    [Fact]
    public void keys_that_share_their_low_64_bits_are_told_apart_and_receive_times_round_up_to_the_millisecond()
    {
        using var index = new MessageIdIndex(TimeSpan.FromSeconds(2));
        var a = new UInt128(1UL << 63, 42);
        var b = new UInt128(1UL << 62, 42);
        index.Add(a, T0.AddTicks(4_000));

        Assert.True(index.Contains(a, T0));
        Assert.False(index.Contains(b, T0));
        index.Add(b, T0);
        Assert.Equal(2, index.Count);
        // Stored as T0 + 1 ms: within a millisecond of the window's end it errs toward "seen".
        Assert.True(index.Contains(a, T0.AddSeconds(2).AddTicks(9_999)));
        Assert.False(index.Contains(a, T0.AddSeconds(2).AddMilliseconds(1)));
        Assert.False(index.Contains(b, T0.AddSeconds(2)));
    }

    [Fact]
    public void adding_a_key_again_keeps_its_latest_receive_time_and_one_entry()
    {
        using var index = new MessageIdIndex(TimeSpan.FromDays(7));
        var key = MessageIdIndex.Key("src", "m");
        index.Add(key, T0);
        index.Add(key, T0.AddDays(-3));
        index.Add(key, T0.AddDays(2));

        Assert.Equal(1, index.Count);
        Assert.True(index.Contains(key, T0.AddDays(9).AddTicks(-1)));
        Assert.False(index.Contains(key, T0.AddDays(9)));
    }

    [Fact]
    public void it_grows_past_a_million_entries_and_finds_every_one_and_none_it_was_not_given()
    {
        using var index = new MessageIdIndex(TimeSpan.FromDays(7));
        var startBytes = index.Bytes;
        const int n = 1_200_000;
        for (var i = 0; i < n; i++) { index.Add(MessageIdIndex.Key("src", $"m-{i}"), T0.AddMilliseconds(i)); }

        Assert.Equal(n, index.Count);
        Assert.True(index.Bytes > startBytes);
        // 16 bytes a slot, 35-70 % of the slots used: 23-46 bytes an entry, where the dictionary took 36-72 (and its dead arrays).
        Assert.InRange(index.Bytes / (double)n, 16 / 0.7, 16 / 0.35);
        for (var i = 0; i < n; i++) { Assert.True(index.Contains(MessageIdIndex.Key("src", $"m-{i}"), T0.AddDays(1)), $"m-{i}"); }
        for (var i = n; i < n + 100_000; i++) { Assert.False(index.Contains(MessageIdIndex.Key("src", $"m-{i}"), T0.AddDays(1)), $"m-{i}"); }
    }

    [Fact]
    public void a_sweep_drops_what_left_the_window_keeps_the_rest_and_shrinks_the_table()
    {
        using var index = new MessageIdIndex(TimeSpan.FromDays(7));
        var now = DateTimeOffset.UtcNow;
        for (var i = 0; i < 100_000; i++) { index.Add(MessageIdIndex.Key("src", $"old-{i}"), now.AddDays(-8)); }
        for (var i = 0; i < 1_000; i++) { index.Add(MessageIdIndex.Key("src", $"new-{i}"), now.AddMinutes(-i)); }
        var before = index.Bytes;

        index.SweepIfDue(now.AddMinutes(30));
        Assert.Equal(101_000, index.Count); // at most once an hour
        index.SweepIfDue(now.AddHours(2));

        Assert.Equal(1_000, index.Count);
        Assert.True(index.Bytes < before / 10, $"{index.Bytes} bytes after the sweep, {before} before");
        for (var i = 0; i < 1_000; i++) { Assert.True(index.Contains(MessageIdIndex.Key("src", $"new-{i}"), now), $"new-{i}"); }
        Assert.False(index.Contains(MessageIdIndex.Key("src", "old-1"), now.AddDays(-8)));
    }

    [Fact]
    public void clear_forgets_everything_and_a_disposed_index_refuses_use()
    {
        var index = new MessageIdIndex(TimeSpan.FromDays(7));
        for (var i = 0; i < 5_000; i++) { index.Add(MessageIdIndex.Key("src", $"m-{i}"), T0); }
        index.Clear();
        Assert.Equal(0, index.Count);
        Assert.False(index.Contains(MessageIdIndex.Key("src", "m-1"), T0));
        index.Add(MessageIdIndex.Key("src", "m-1"), T0);
        Assert.True(index.Contains(MessageIdIndex.Key("src", "m-1"), T0));

        index.Dispose();
        Assert.Equal(0, index.Bytes);
        Assert.Throws<ObjectDisposedException>(() => index.Contains(MessageIdIndex.Key("src", "m-1"), T0));
        Assert.Throws<ObjectDisposedException>(() => index.Add(MessageIdIndex.Key("src", "m-1"), T0));
        index.Dispose();
    }
}
