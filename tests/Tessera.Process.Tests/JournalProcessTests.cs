using System.Buffers.Binary;
using System.Collections.Concurrent;
using System.Globalization;
using System.Net;
using System.Net.Http.Json;
using System.Text.Json.Nodes;
using Tessera.Server.Hosting;
using Tessera.Testing;

namespace Tessera.Process.Tests;

/// <summary>
/// The journal with the real process: a 200 is durable once the journal has it, even while the store lags far
/// behind (held back with the test-only <c>--indexer-delay-ms</c>); what a crash leaves in the journal is indexed at
/// the next start, exactly once; a torn last record is cut off; damage in the middle stops the start with its place.
/// </summary>
public sealed class JournalProcessTests
{
    [Fact]
    public async Task every_event_acknowledged_while_the_store_lags_survives_kill_minus_9_and_is_stored_exactly_once()
    {
        var dataDir = TempDirectory.Create("journal-kill9");
        var acknowledged = new ConcurrentBag<string>();
        long behindAtKill;
        await using (var tessera = await TesseraProcess.StartServeAsync(dataDir, "--indexer-delay-ms", "300"))
        {
            using var stop = new CancellationTokenSource();
            var senders = SendUntilStopped(tessera.BaseAddress, "jk", acknowledged, stop.Token);
            await Task.Delay(2000);
            behindAtKill = await BehindBytesAsync(tessera.BaseAddress);
            await tessera.KillHardAsync();
            await stop.CancelAsync();
            await Task.WhenAll(senders);
        }

        Assert.True(acknowledged.Count > 500, $"only {acknowledged.Count} events were acknowledged before the kill; the test needs load in flight");
        Assert.True(behindAtKill > 0, "the store should have been behind the journal when the process was killed");

        await using var restarted = await TesseraProcess.StartServeAsync(dataDir);
        using var admin = Http.Admin(restarted.BaseAddress);
        var stored = await StoredMessageIdListAsync(admin);
        var lost = acknowledged.Where(id => !stored.Contains(id)).ToList();
        Assert.True(lost.Count == 0, $"{lost.Count} acknowledged events were lost, e.g. {string.Join(", ", lost.Take(5))}");
        Assert.Equal(stored.Count, stored.Distinct().Count());
        Assert.Equal(stored.Count, (await admin.GetFromJsonAsync<JsonObject>("api/stats"))!["events"]!.GetValue<long>());
        Assert.Contains("replayed", restarted.Output, StringComparison.Ordinal);
    }

    [Fact]
    public async Task a_record_torn_by_a_crash_is_cut_off_at_start_and_the_journal_carries_on_after_it()
    {
        var dataDir = TempDirectory.Create("journal-torn");
        var acknowledged = new List<string>();
        await using (var tessera = await TesseraProcess.StartServeAsync(dataDir, "--indexer-delay-ms", "60000"))
        {
            using var client = Http.Collect(tessera.BaseAddress);
            for (var b = 0; b < 3; b++)
            {
                var ids = Enumerable.Range(0, 20).Select(i => $"torn-{b}-{i}").ToList();
                Assert.Equal(HttpStatusCode.OK, (await client.PostAsync("v1/batch", Http.Batch(ids))).StatusCode);
                acknowledged.AddRange(ids);
            }

            await tessera.KillHardAsync();
        }

        // What a crash in the middle of the next write leaves: a header and part of a payload after the last record.
        var segment = Segments(dataDir).Last();
        var lengthBefore = new FileInfo(segment).Length;
        var records = RecordOffsets(segment);
        var firstRecord = File.ReadAllBytes(segment)[..(int)records[1]];
        await using (var file = new FileStream(segment, FileMode.Append, FileAccess.Write))
        {
            file.Write(firstRecord.AsSpan(0, firstRecord.Length / 2));
        }

        await using (var restarted = await TesseraProcess.StartServeAsync(dataDir))
        {
            Assert.Contains($"cut off {firstRecord.Length / 2} bytes from offset {lengthBefore}", restarted.Output, StringComparison.Ordinal);
            using var admin = Http.Admin(restarted.BaseAddress);
            Assert.Equal(acknowledged.Order(), (await StoredMessageIdListAsync(admin)).Order());

            using var client = Http.Collect(restarted.BaseAddress);
            Assert.Equal(HttpStatusCode.OK, (await client.PostAsync("v1/batch", Http.Batch(["after-torn-1", "after-torn-2"]))).StatusCode);
            Assert.Equal(0, await restarted.TerminateAsync(TimeSpan.FromSeconds(60)));
        }

        await using var again = await TesseraProcess.StartServeAsync(dataDir);
        using var admin2 = Http.Admin(again.BaseAddress);
        Assert.Equal(acknowledged.Append("after-torn-1").Append("after-torn-2").Order(), (await StoredMessageIdListAsync(admin2)).Order());
        Assert.DoesNotContain("cut off", again.Output, StringComparison.Ordinal);
    }

    [Fact]
    public async Task a_corrupt_record_in_the_middle_of_the_journal_stops_serve_with_the_file_and_offset()
    {
        var dataDir = TempDirectory.Create("journal-corrupt");
        await using (var tessera = await TesseraProcess.StartServeAsync(dataDir, "--indexer-delay-ms", "60000"))
        {
            using var client = Http.Collect(tessera.BaseAddress);
            for (var b = 0; b < 3; b++)
            {
                Assert.Equal(HttpStatusCode.OK, (await client.PostAsync("v1/batch", Http.Batch([$"bad-{b}"]))).StatusCode);
            }

            await tessera.KillHardAsync();
        }

        var segment = Segments(dataDir).Last();
        var records = RecordOffsets(segment);
        Assert.Equal(3, records.Count);
        var bytes = await File.ReadAllBytesAsync(segment);
        bytes[records[1] + 30] ^= 0x5A;
        await File.WriteAllBytesAsync(segment, bytes);

        var (exitCode, output) = await RunServeToExitAsync(dataDir, TimeSpan.FromSeconds(60));

        Assert.Equal(1, exitCode);
        Assert.Contains($"tessera: {segment}: the record at offset {records[1]} is corrupt", output, StringComparison.Ordinal);
        Assert.Contains("a valid record follows it", output, StringComparison.Ordinal);
    }

    [Fact]
    public async Task sigterm_with_the_store_behind_drains_the_journal_into_the_store_before_exiting_0()
    {
        var dataDir = TempDirectory.Create("journal-sigterm");
        var acknowledged = new ConcurrentBag<string>();
        int exitCode;
        long behindAtTerm;
        await using (var tessera = await TesseraProcess.StartServeAsync(dataDir, "--indexer-delay-ms", "200"))
        {
            using var stop = new CancellationTokenSource();
            var senders = SendUntilStopped(tessera.BaseAddress, "jt", acknowledged, stop.Token);
            // Load in flight first: under the whole suite's load a fixed 1.5 s once passed before any batch was answered.
            for (var waited = System.Diagnostics.Stopwatch.StartNew(); acknowledged.Count < 500 && waited.Elapsed < TimeSpan.FromSeconds(30);) { await Task.Delay(50); }
            behindAtTerm = await BehindBytesAsync(tessera.BaseAddress);
            exitCode = await tessera.TerminateAsync(TimeSpan.FromSeconds(60));
            await stop.CancelAsync();
            await Task.WhenAll(senders);
            Assert.Contains("the store holds every acknowledged event", tessera.Output, StringComparison.Ordinal);
        }

        Assert.Equal(0, exitCode);
        Assert.True(behindAtTerm > 0, "the store should have been behind the journal when SIGTERM came");
        Assert.NotEmpty(acknowledged);

        // Straight from the store, with no server (so no replay at start): the drain put everything there.
        var journalEnd = JournalEnd(dataDir);
        var journalId = (await File.ReadAllTextAsync(Path.Combine(dataDir, "journal", "journal.id"))).Trim();
        await using var store = TesseraServer.CreateStore(new TesseraOptions { DataDir = dataDir });
        await store.OpenAsync(CancellationToken.None);
        Assert.Equal(journalEnd, await store.GetJournalPositionAsync(journalId, CancellationToken.None));
        var stored = new HashSet<string>();
        for (var query = new Storage.Events.EventQuery(Limit: 1000); ;)
        {
            var page = await store.QueryAsync(query, CancellationToken.None);
            foreach (var e in page.Items) { stored.Add(e.Message.MessageId); }
            if (page.NextCursor is not { } next) { break; }
            query = query with { Before = next };
        }

        Assert.All(acknowledged, id => Assert.Contains(id, stored));
    }

    [Fact]
    public async Task with_the_journal_turned_off_what_a_crash_left_in_it_is_still_indexed()
    {
        var dataDir = TempDirectory.Create("journal-off");
        var acknowledged = new List<string>();
        await using (var tessera = await TesseraProcess.StartServeAsync(dataDir, "--indexer-delay-ms", "60000"))
        {
            using var client = Http.Collect(tessera.BaseAddress);
            var ids = Enumerable.Range(0, 30).Select(i => $"left-{i}").ToList();
            Assert.Equal(HttpStatusCode.OK, (await client.PostAsync("v1/batch", Http.Batch(ids))).StatusCode);
            acknowledged.AddRange(ids);
            await tessera.KillHardAsync();
        }

        await using var restarted = await TesseraProcess.StartServeAsync(dataDir, "--no-journal");
        using var admin = Http.Admin(restarted.BaseAddress);
        using var client2 = Http.Collect(restarted.BaseAddress);
        Assert.Equal(HttpStatusCode.OK, (await client2.PostAsync("v1/batch", Http.Batch(["direct-1"]))).StatusCode);
        var health = (await admin.GetFromJsonAsync<JsonObject>("health"))!;

        Assert.Equal(acknowledged.Append("direct-1").Order(), (await StoredMessageIdListAsync(admin)).Order());
        Assert.Null(health["journal"]);
    }

    private static List<Task> SendUntilStopped(Uri baseAddress, string prefix, ConcurrentBag<string> acknowledged, CancellationToken stop) =>
        Enumerable.Range(0, 4).Select(s => Task.Run(async () =>
        {
            using var client = Http.Collect(baseAddress);
            for (var b = 0; !stop.IsCancellationRequested; b++)
            {
                var ids = Enumerable.Range(0, 50).Select(i => $"{prefix}-{s}-{b}-{i}").ToList();
                try
                {
                    using var response = await client.PostAsync("v1/batch", Http.Batch(ids));
                    if (response.StatusCode == HttpStatusCode.OK) { foreach (var id in ids) { acknowledged.Add(id); } }
                }
                catch (HttpRequestException)
                {
                    return; // the server is gone: this batch was never acknowledged
                }
            }
        })).ToList();

    private static async Task<long> BehindBytesAsync(Uri baseAddress)
    {
        using var client = new HttpClient { BaseAddress = baseAddress };
        return (await client.GetFromJsonAsync<JsonObject>("health"))!["journal"]!["behindBytes"]!.GetValue<long>();
    }

    /// <summary>Every stored messageId, duplicates included, following cursors.</summary>
    private static async Task<List<string>> StoredMessageIdListAsync(HttpClient admin)
    {
        var ids = new List<string>();
        string? cursor = null;
        do
        {
            var page = (await admin.GetFromJsonAsync<JsonObject>($"api/events?limit=1000{(cursor is null ? "" : "&cursor=" + cursor)}"))!;
            ids.AddRange(page["items"]!.AsArray().Select(e => e!["messageId"]!.GetValue<string>()));
            cursor = page["nextCursor"]?.GetValue<string>();
        }
        while (cursor is not null);
        return ids;
    }

    private static List<string> Segments(string dataDir) =>
        [.. Directory.GetFiles(Path.Combine(dataDir, "journal"), "*.tjl").Order(StringComparer.Ordinal)];

    private static long JournalEnd(string dataDir)
    {
        var last = Segments(dataDir).Last();
        return long.Parse(Path.GetFileNameWithoutExtension(last), CultureInfo.InvariantCulture) + new FileInfo(last).Length;
    }

    /// <summary>Where each record of a segment starts, read from the record headers (24 bytes, payload length at +4).</summary>
    private static List<int> RecordOffsets(string segment)
    {
        var bytes = File.ReadAllBytes(segment);
        var offsets = new List<int>();
        for (var at = 0; at < bytes.Length; at += 24 + (int)BinaryPrimitives.ReadUInt32LittleEndian(bytes.AsSpan(at + 4))) { offsets.Add(at); }
        return offsets;
    }

    private static async Task<(int ExitCode, string Output)> RunServeToExitAsync(string dataDir, TimeSpan timeout)
    {
        var start = new System.Diagnostics.ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var a in new[] { TesseraProcess.CliPath, "serve", "--urls", $"http://127.0.0.1:{TesseraProcess.FreePort()}", "--data-dir", dataDir }) { start.ArgumentList.Add(a); }
        start.Environment["TESSERA_ADMIN_TOKEN"] = TestServer.AdminToken;
        using var process = System.Diagnostics.Process.Start(start)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        using var cts = new CancellationTokenSource(timeout);
        try
        {
            await process.WaitForExitAsync(cts.Token);
        }
        catch (OperationCanceledException)
        {
            process.Kill(entireProcessTree: true);
            throw new TimeoutException($"tessera serve did not exit within {timeout}:\n{await stdout}{await stderr}");
        }

        return (process.ExitCode, await stdout + await stderr);
    }
}
