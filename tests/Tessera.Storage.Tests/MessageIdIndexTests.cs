using Tessera.Storage.Events;
using Tessera.Testing;

namespace Tessera.Storage.Tests;

/// <summary>
/// The embedded store's dedup index: (source, messageId) hashes with their receive time, in native memory: a table of
/// the recent ones, sorted runs of the older ones.
/// </summary>
public sealed class MessageIdIndexTests
{
    private static readonly DateTimeOffset T0 = new(2026, 12, 4, 12, 0, 0, TimeSpan.Zero);

    /// <summary>A directory for an index's run files.</summary>
    private static string Runs() => TempDirectory.Create("dedup");

    [Fact]
    public void a_resend_within_the_window_is_found_and_one_after_it_or_from_another_source_is_not()
    {
        using var index = new MessageIdIndex(TimeSpan.FromDays(7), Runs());
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
        using var index = new MessageIdIndex(TimeSpan.FromSeconds(2), Runs());
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
        using var index = new MessageIdIndex(TimeSpan.FromDays(7), Runs());
        var key = MessageIdIndex.Key("src", "m");
        index.Add(key, T0);
        index.Add(key, T0.AddDays(-3));
        index.Add(key, T0.AddDays(2));

        Assert.Equal(1, index.Count);
        Assert.True(index.Contains(key, T0.AddDays(9).AddTicks(-1)));
        Assert.False(index.Contains(key, T0.AddDays(9)));
    }

    [Fact]
    public void it_grows_past_a_million_entries_into_a_few_runs_in_unlinked_files_and_finds_every_one_and_none_it_was_not_given()
    {
        var directory = Runs();
        var index = new MessageIdIndex(TimeSpan.FromDays(7), directory);
        const int n = 1_200_000;
        for (var i = 0; i < n; i++) { index.Add(MessageIdIndex.Key("src", $"m-{i}"), T0.AddMilliseconds(i)); }

        Assert.Equal(n, index.Count);
        index.WaitForRuns();
        // The table of recent pairs stops at 2^18 slots (4 MB, 183,500 pairs); the rest is in runs: 16 bytes an entry
        // in a file, 1.6-1.75 in memory (2.3-2.5 with 16-bit tags; runs in memory took 12-13; the table alone 23-46,
        // 16-byte slots 35-70 % used).
        Assert.InRange(index.Bytes, 4L << 20, (4L << 20) + 1.8 * n);
        Assert.InRange(index.FileBytes, (n - 183_500) * 16L, n * 16L);
        Assert.InRange(index.Runs, 1, 4);
        // Unlinked as soon as made: nothing to clean up after a crash.
        Assert.Empty(Directory.GetFiles(directory));
        for (var i = 0; i < n; i++) { Assert.True(index.Contains(MessageIdIndex.Key("src", $"m-{i}"), T0.AddDays(1)), $"m-{i}"); }
        for (var i = n; i < n + 100_000; i++) { Assert.False(index.Contains(MessageIdIndex.Key("src", $"m-{i}"), T0.AddDays(1)), $"m-{i}"); }

        index.Dispose();
        Assert.Equal(0, index.Bytes);
        Assert.Equal(0, index.FileBytes);
    }

    [Fact]
    public void pairs_moved_to_a_run_keep_their_time_to_the_second_rounded_up()
    {
        using var index = new MessageIdIndex(TimeSpan.FromDays(7), Runs(), maxRecentSlots: 1024);
        var key = MessageIdIndex.Key("src", "early");
        index.Add(key, T0.AddMilliseconds(200));
        for (var i = 0; i < 2_000; i++) { index.Add(MessageIdIndex.Key("src", $"m-{i}"), T0); }
        Assert.True(index.Runs >= 1);

        // Stored as T0 + 1 s: within a second of the window's end it errs toward "seen", as the table does to the millisecond.
        Assert.True(index.Contains(key, T0.AddDays(7).AddMilliseconds(999)));
        Assert.False(index.Contains(key, T0.AddDays(7).AddSeconds(1)));
        Assert.True(index.Contains(key, T0.AddDays(-30)));
        Assert.False(index.Contains(MessageIdIndex.Key("other-src", "early"), T0));
    }

    [Fact]
    public void keys_that_differ_only_in_the_bits_a_run_keeps_last_are_told_apart_in_the_table_and_in_a_run()
    {
        using var index = new MessageIdIndex(TimeSpan.FromDays(7), Runs(), maxRecentSlots: 1024);
        // Same high 64 bits; they differ in bit 48 (the last a run keeps) or bit 42 (the last the table keeps).
        var a = new UInt128(0xABCD_0000_0000_1234, 1UL << 48);
        var b = new UInt128(0xABCD_0000_0000_1234, 0);
        var c = new UInt128(0xABCD_0000_0000_1234, 1UL << 42);
        index.Add(a, T0);
        Assert.True(index.Contains(a, T0));
        Assert.False(index.Contains(b, T0));
        Assert.False(index.Contains(c, T0));

        for (var i = 0; i < 2_000; i++) { index.Add(MessageIdIndex.Key("src", $"m-{i}"), T0); }
        Assert.True(index.Runs >= 1);
        Assert.True(index.Contains(a, T0));
        Assert.False(index.Contains(b, T0));
        Assert.False(index.Contains(c, T0));

        index.Add(c, T0);
        Assert.True(index.Contains(c, T0));
        Assert.False(index.Contains(b, T0));
        for (var i = 0; i < 2_000; i++) { index.Add(MessageIdIndex.Key("src", $"n-{i}"), T0); }
        // 80 bits are kept in a run: c agrees with b on all of them, so there it stands for b too (for two hashes, one
        // chance in 2^80).
        Assert.True(index.Contains(c, T0));
        Assert.True(index.Contains(b, T0));
    }

    [Fact]
    public void a_key_added_again_after_it_moved_to_a_run_keeps_its_latest_time_when_runs_merge()
    {
        using var index = new MessageIdIndex(TimeSpan.FromDays(7), Runs(), maxRecentSlots: 1024);
        var key = MessageIdIndex.Key("src", "again");
        index.Add(key, T0);
        for (var i = 0; i < 1_000; i++) { index.Add(MessageIdIndex.Key("src", $"a-{i}"), T0); }
        index.Add(key, T0.AddDays(2));
        for (var i = 0; i < 50_000; i++) { index.Add(MessageIdIndex.Key("src", $"b-{i}"), T0); }
        index.WaitForRuns();

        Assert.True(index.Contains(key, T0.AddDays(9).AddMilliseconds(-1)));
        Assert.False(index.Contains(key, T0.AddDays(9)));
        Assert.Equal(51_001, index.Count);
    }

    [Fact]
    public void runs_merge_as_they_grow_so_a_lookup_reads_a_few_of_them()
    {
        using var index = new MessageIdIndex(TimeSpan.FromDays(7), Runs(), maxRecentSlots: 1024);
        const int n = 200_000;
        for (var i = 0; i < n; i++)
        {
            index.Add(MessageIdIndex.Key("src", $"m-{i}"), T0.AddMilliseconds(i));
            // Once the merges in the background catch up, runs from newest to oldest at least double: about
            // log2(entries / 716) of them.
            index.WaitForRuns();
            Assert.True(index.Runs <= 10, $"{index.Runs} runs after {i + 1} entries");
        }

        Assert.Equal(n, index.Count);
        for (var i = 0; i < n; i++) { Assert.True(index.Contains(MessageIdIndex.Key("src", $"m-{i}"), T0.AddDays(1)), $"m-{i}"); }
        for (var i = n; i < 2 * n; i++) { Assert.False(index.Contains(MessageIdIndex.Key("src", $"m-{i}"), T0.AddDays(1)), $"m-{i}"); }
    }

    [Fact]
    public void keys_are_found_while_their_runs_merge_in_the_background_and_after()
    {
        using var index = new MessageIdIndex(TimeSpan.FromDays(7), Runs(), maxRecentSlots: 1024);
        const int n = 300_000;
        var checkedWhileWorking = 0;
        for (var i = 0; i < n; i++)
        {
            index.Add(MessageIdIndex.Key("src", $"m-{i}"), T0);
            if (i % 997 != 0) { continue; }
            var working = index.Working;
            for (var j = Math.Max(0, i - 20_000); j <= i; j += 13)
            {
                Assert.True(index.Contains(MessageIdIndex.Key("src", $"m-{j}"), T0), $"m-{j} after {i + 1} entries");
            }

            checkedWhileWorking += working ? 1 : 0;
        }

        // The lookups above ran while merges were in flight, not only between them.
        Assert.True(checkedWhileWorking > 10, $"{checkedWhileWorking} checks while a merge was in flight");
        index.WaitForRuns();
        Assert.False(index.Working);
        Assert.Equal(n, index.Count);
        for (var i = 0; i < n; i++) { Assert.True(index.Contains(MessageIdIndex.Key("src", $"m-{i}"), T0), $"m-{i}"); }
        Assert.False(index.Contains(MessageIdIndex.Key("src", "m-never"), T0));
    }

    [Fact]
    public void lookups_agree_with_a_dictionary_of_exact_times_over_random_adds_and_queries()
    {
        var window = TimeSpan.FromMinutes(10);
        using var index = new MessageIdIndex(window, Runs(), maxRecentSlots: 1024);
        var exact = new Dictionary<UInt128, DateTimeOffset>();
        var random = new Random(20261205);
        for (var step = 0; step < 60_000; step++)
        {
            var key = MessageIdIndex.Key("src", $"m-{random.Next(20_000)}");
            var at = T0.AddMilliseconds(random.Next(3_600_000));
            if (random.Next(3) == 0)
            {
                index.Add(key, at);
                exact[key] = exact.TryGetValue(key, out var held) && held > at ? held : at;
                continue;
            }

            var seen = index.Contains(key, at);
            if (!exact.TryGetValue(key, out var stored)) { Assert.False(seen, $"step {step}: never added"); }
            // Within the window by the exact time: seen. Past it by more than the second a run rounds to: not seen.
            else if (at - stored < window) { Assert.True(seen, $"step {step}: {at - stored} after"); }
            else if (at - stored >= window + TimeSpan.FromSeconds(1)) { Assert.False(seen, $"step {step}: {at - stored} after"); }
        }

        Assert.True(index.Runs >= 1);
    }

    [Fact]
    public void a_sweep_drops_what_left_the_window_keeps_the_rest_and_shrinks_the_table()
    {
        using var index = new MessageIdIndex(TimeSpan.FromDays(7), Runs());
        var now = DateTimeOffset.UtcNow;
        for (var i = 0; i < 100_000; i++) { index.Add(MessageIdIndex.Key("src", $"old-{i}"), now.AddDays(-8)); }
        for (var i = 0; i < 1_000; i++) { index.Add(MessageIdIndex.Key("src", $"new-{i}"), now.AddMinutes(-i)); }
        var before = index.Bytes;

        index.SweepIfDue(now.AddMinutes(30));
        Assert.Equal(101_000, index.Count); // at most once an hour
        index.SweepIfDue(now.AddHours(2));
        index.WaitForRuns();

        Assert.Equal(1_000, index.Count);
        Assert.True(index.Bytes < before / 10, $"{index.Bytes} bytes after the sweep, {before} before");
        for (var i = 0; i < 1_000; i++) { Assert.True(index.Contains(MessageIdIndex.Key("src", $"new-{i}"), now), $"new-{i}"); }
        Assert.False(index.Contains(MessageIdIndex.Key("src", "old-1"), now.AddDays(-8)));
    }

    [Fact]
    public void a_sweep_drops_from_the_runs_what_left_the_window_and_gives_back_their_memory()
    {
        using var index = new MessageIdIndex(TimeSpan.FromDays(7), Runs(), maxRecentSlots: 1024);
        var now = DateTimeOffset.UtcNow;
        for (var i = 0; i < 100_000; i++) { index.Add(MessageIdIndex.Key("src", $"old-{i}"), now.AddDays(-8)); }
        for (var i = 0; i < 5_000; i++) { index.Add(MessageIdIndex.Key("src", $"new-{i}"), now.AddMinutes(-i)); }
        Assert.True(index.Runs >= 1);
        var before = index.Bytes;

        index.SweepIfDue(now.AddHours(2));
        index.WaitForRuns();

        Assert.Equal(5_000, index.Count);
        // What is left: the table, 5,000 entries' tags of a byte and a half, and each run's bucket array (a start for
        // every 16-32 entries, at least 17); in files, 16 bytes an entry.
        Assert.True(index.Bytes < before / 3, $"{index.Bytes} bytes after the sweep, {before} before");
        Assert.True(index.Bytes <= 1024 * 16 + 5_000 * 1.8 + index.Runs * ((17 * 4) + 1), $"{index.Bytes} bytes in {index.Runs} runs");
        Assert.True(index.FileBytes <= 5_000 * 16, $"{index.FileBytes} bytes in files");
        for (var i = 0; i < 5_000; i++) { Assert.True(index.Contains(MessageIdIndex.Key("src", $"new-{i}"), now), $"new-{i}"); }
        Assert.False(index.Contains(MessageIdIndex.Key("src", "old-1"), now.AddDays(-8)));
        Assert.False(index.Contains(MessageIdIndex.Key("src", "old-99999"), now.AddDays(-8)));
    }

    [Fact]
    public unsafe void a_run_holds_a_byte_and_three_quarters_an_id_and_reads_its_file_once_for_a_resend_and_rarely_for_a_new_id()
    {
        const int n = 1_000_000;
        var random = new Random(7);
        var keys = new UInt128[n];
        for (var i = 0; i < n; i++) { keys[i] = RandomKey(random); }
        var values = keys.Select(key => MessageIdRun.Value((ulong)(key >> 64), (ushort)(key >> 48), 1_000)).Order().ToArray();
        MessageIdRun run;
        fixed (UInt128* sorted = values) { run = MessageIdRun.FromSorted(Runs(), sorted, n); }
        using (run)
        {
            // 12-bit tags (a byte and a half) and a bucket start (4 bytes) for every 16-32 ids.
            Assert.InRange(run.Bytes, 1.5 * n, 1.8 * n);
            for (var i = 0; i < 1_000; i++)
            {
                Assert.True(run.TryFind(keys[i], out var seconds), $"key {i}");
                Assert.Equal(1_000u, seconds);
            }

            // A resend reads its entry, and an entry before it only when their tags agree by chance.
            Assert.InRange(run.FileReads, 1_000, 1_050);
            var before = run.FileReads;
            const int absent = 100_000;
            for (var i = 0; i < absent; i++) { Assert.False(run.TryFind(RandomKey(random), out _)); }

            // A new id reads the file only when a tag in its bucket matches: about 24 in 4,096 lookups here.
            Assert.InRange(run.FileReads - before, 1, absent * 15 / 1_000);
        }
    }

    private static UInt128 RandomKey(Random random)
    {
        Span<byte> bytes = stackalloc byte[16];
        random.NextBytes(bytes);
        return System.Buffers.Binary.BinaryPrimitives.ReadUInt128LittleEndian(bytes);
    }

    [Fact]
    public void clear_forgets_everything_and_a_disposed_index_refuses_use()
    {
        var index = new MessageIdIndex(TimeSpan.FromDays(7), Runs(), maxRecentSlots: 1024);
        for (var i = 0; i < 5_000; i++) { index.Add(MessageIdIndex.Key("src", $"m-{i}"), T0); }
        Assert.True(index.Runs >= 1);
        index.Clear();
        Assert.Equal(0, index.Count);
        Assert.Equal(0, index.Runs);
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
