using Tessera.Core.Collection;
using Tessera.Storage.Journal;
using Tessera.Testing;

namespace Tessera.Storage.Tests;

/// <summary>The journal's files as a crash or a damaged disk leaves them: real segment files in a temporary directory.</summary>
public sealed class EventJournalTests
{
    private readonly string _directory = Path.Combine(TempDirectory.Create("journal"), "journal");

    [Fact]
    public void records_read_back_in_order_with_every_field_and_offset()
    {
        var full = Event("full", original: new DateTimeOffset(2026, 1, 2, 3, 4, 5, 678, TimeSpan.FromHours(5.5)), sentAt: DateTimeOffset.UnixEpoch.AddTicks(1));
        var sparse = new CollectedEvent("sparse", "src_b", MessageType.Alias, null, null, null, null, null, DateTimeOffset.UnixEpoch, null, null, DateTimeOffset.UnixEpoch, "{}");
        using (var journal = EventJournal.Open(_directory))
        {
            journal.Append([full, sparse]);
            journal.Append([Event("third")]);
        }

        using var reopened = EventJournal.Open(_directory);
        var read = ReadAll(reopened);

        Assert.Equal(["full", "sparse", "third"], read.Select(e => e.MessageId));
        Assert.Equal(full, read[0]);
        Assert.Equal(TimeSpan.FromHours(5.5), read[0].OriginalTimestamp!.Value.Offset);
        Assert.Equal(sparse, read[1]);
        Assert.Null(reopened.Repair);
    }

    [Fact]
    public void one_record_holds_the_groups_of_several_requests_one_after_another_counted_as_one()
    {
        using var first = EncodedEvents.Of([Event("r1-a"), Event("r1-b")]);
        using var empty = new EncodedEvents();
        using var second = EncodedEvents.Of([Event("r2-a")]);
        using (var journal = EventJournal.Open(_directory))
        {
            var start = journal.End;
            var end = journal.Append([first, empty, second]);
            // One record: a 24-byte header, the count (one byte) and the groups' bytes as they were.
            Assert.Equal(24 + 1 + first.Length + second.Length, end - start);
        }

        using var reopened = EventJournal.Open(_directory);
        using var reader = reopened.OpenReader(reopened.Start);
        var read = new List<CollectedEvent>();
        Assert.True(reader.TryRead(reopened.End, read));
        Assert.Equal(reopened.End, reader.Position);
        Assert.Equal([Event("r1-a"), Event("r1-b"), Event("r2-a")], read);
    }

    [Fact]
    public void source_ids_and_event_names_that_recur_in_a_record_read_back_as_written_and_share_one_string_each()
    {
        // Two names that recur, then 100 others (more than the decoder's 64 slots, non-ASCII among them), then the first again.
        string[] names = ["Page Viewed", "Order Completed", "Page Viewed", "Order Completed", .. Enumerable.Range(0, 100).Select(i => i % 7 == 0 ? $"Commande passée {i}" : $"Event {i}"), "Page Viewed"];
        var written = names.Select((name, i) => new CollectedEvent(
            $"m-{i}", i % 2 == 0 ? "src_web" : "src_app", MessageType.Track, name, $"u-{i}", null, null, null,
            DateTimeOffset.UnixEpoch, null, null, DateTimeOffset.UnixEpoch, $$"""{"event":"{{name}}"}""")).ToList();
        using (var journal = EventJournal.Open(_directory)) { journal.Append(written); }

        using var reopened = EventJournal.Open(_directory);
        var read = ReadAll(reopened);

        Assert.Equal(written, read);
        Assert.Same(read[0].Event, read[2].Event);
        Assert.Same(read[1].Event, read[3].Event);
        Assert.Same(read[0].SourceId, read[2].SourceId);
        Assert.Same(read[1].SourceId, read[3].SourceId);
    }

    [Fact]
    public void a_reopened_journal_keeps_its_id_and_continues_at_its_end()
    {
        string id;
        long end;
        using (var journal = EventJournal.Open(_directory))
        {
            id = journal.Id;
            end = journal.Append([Event("a")]);
        }

        using var reopened = EventJournal.Open(_directory);
        var next = reopened.Append([Event("b")]);

        Assert.Equal(id, reopened.Id);
        Assert.Equal(32, id.Length);
        Assert.True(next > end);
        Assert.Equal(["a", "b"], ReadAll(reopened).Select(e => e.MessageId));
    }

    [Fact]
    public void a_closed_journal_refuses_appends_with_a_journal_error_and_keeps_what_it_had()
    {
        var journal = EventJournal.Open(_directory);
        journal.Append([Event("kept")]);
        journal.Dispose();

        var refused = Assert.Throws<JournalException>(() => journal.Append([Event("late")]));

        Assert.Contains("the journal is closed", refused.Message, StringComparison.Ordinal);
        using var reopened = EventJournal.Open(_directory);
        Assert.Equal(["kept"], ReadAll(reopened).Select(e => e.MessageId));
    }

    [Fact]
    public void a_second_process_cannot_open_the_same_journal()
    {
        using var journal = EventJournal.Open(_directory);

        var refused = Assert.Throws<JournalException>(() => EventJournal.Open(_directory));

        Assert.Contains("in use by another Tessera process", refused.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task appends_that_roll_to_a_new_segment_and_reads_go_on_while_indexed_segments_are_being_deleted()
    {
        using var journal = EventJournal.Open(_directory, segmentBytes: 512);
        var ends = Enumerable.Range(0, 20).Select(i => journal.Append([Event($"m-{i}")])).ToList();
        using var deleting = new ManualResetEventSlim(false);
        using var release = new ManualResetEventSlim(false);
        // A deletion as slow as a large segment's on a busy disk: it waits until the test lets it go.
        journal.DeleteSegmentFile = path =>
        {
            deleting.Set();
            release.Wait(TimeSpan.FromSeconds(30));
            File.Delete(path);
        };
        var delete = Task.Run(() => journal.DeleteBefore(ends[9]));
        try
        {
            Assert.True(deleting.Wait(TimeSpan.FromSeconds(10)), "the deletion never started");
            var others = Task.Run(() =>
            {
                var before = journal.SegmentCount;
                for (var i = 20; i < 30; i++) { journal.Append([Event($"m-{i}")]); }
                Assert.True(journal.SegmentCount > before, "the appends should have rolled to a new segment");
                return ReadAll(journal).Select(e => e.MessageId).ToList();
            });
            Assert.True(await Task.WhenAny(others, Task.Delay(TimeSpan.FromSeconds(5))) == others, "appends and reads waited for the deletion of segments they do not use");
            var read = await others;
            Assert.Equal(Enumerable.Range(10, 20).Select(i => $"m-{i}"), read.Skip(read.Count - 20));
        }
        finally
        {
            release.Set();
        }

        Assert.True(await delete >= 1);
        Assert.Equal(journal.SegmentCount, Directory.GetFiles(_directory, "*.tjl").Length);
    }

    [Fact]
    public void a_segment_whose_deletion_failed_is_kept_and_deleted_by_the_next_call()
    {
        using var journal = EventJournal.Open(_directory, segmentBytes: 512);
        var ends = Enumerable.Range(0, 20).Select(i => journal.Append([Event($"m-{i}")])).ToList();
        var segments = journal.SegmentCount;
        var start = journal.Start;
        // A directory where the oldest segment's file would be renamed to: the rename out of the journal fails for real.
        var obstacle = Path.ChangeExtension(Directory.GetFiles(_directory, "*.tjl").Order(StringComparer.Ordinal).First(), ".deleting");
        Directory.CreateDirectory(obstacle);

        Assert.ThrowsAny<IOException>(() => journal.DeleteBefore(ends[9]));
        Assert.Equal(segments, journal.SegmentCount);
        Assert.Equal(start, journal.Start);
        Assert.Equal(20, ReadAll(journal).Count);

        Directory.Delete(obstacle);
        Assert.True(journal.DeleteBefore(ends[9]) >= 1);
        Assert.Equal(journal.SegmentCount, Directory.GetFiles(_directory, "*.tjl").Length);
        Assert.Empty(Directory.GetFileSystemEntries(_directory, "*.deleting"));
    }

    [Fact]
    public void a_paced_deletion_cuts_a_segment_down_before_unlinking_it_and_one_a_crash_interrupted_is_finished_by_the_next_call()
    {
        // Records of ~11 MB, one segment each (a record never spans segments), so a paced deletion has cuts to make.
        var padding = new string('x', 500);
        List<CollectedEvent> Big(string prefix) => [.. Enumerable.Range(0, 20_000).Select(i => Event($"{prefix}-{i}") with { Raw = "{\"pad\":\"" + padding + "\"}" })];
        long retiredLength = -1;
        long second;
        using (var journal = EventJournal.Open(_directory, segmentBytes: 1 << 20))
        {
            var first = journal.Append(Big("a"));
            second = journal.Append(Big("b"));
            journal.Append([Event("last")]);
            Assert.True(first > 2 * FileTrim.StepBytes, $"a record of {first} bytes");
            Assert.Equal(3, journal.SegmentCount);
            journal.DeleteSegmentFile = path =>
            {
                retiredLength = new FileInfo(path).Length;
                File.Delete(path);
            };

            Assert.Equal(1, journal.DeleteBefore(first, paced: true));
            Assert.InRange(retiredLength, 1, FileTrim.StepBytes);
            Assert.Equal(2, Directory.GetFiles(_directory, "*.tjl").Length);
            Assert.Empty(Directory.GetFiles(_directory, "*.deleting"));
        }

        // A crash in the middle of the next deletion, after its rename and a cut: the file is out of the journal, which
        // opens without it (no segment cut short), and the next call deletes what is left of it.
        var oldest = Directory.GetFiles(_directory, "*.tjl").Order(StringComparer.Ordinal).First();
        var retired = Path.ChangeExtension(oldest, ".deleting");
        File.Move(oldest, retired);
        using (var cut = File.OpenHandle(retired, FileMode.Open, FileAccess.Write)) { RandomAccess.SetLength(cut, 1000); }
        using (var reopened = EventJournal.Open(_directory, segmentBytes: 1 << 20))
        {
            Assert.Equal(second, reopened.Start);
            Assert.Equal(["last"], ReadAll(reopened).Select(e => e.MessageId));
            Assert.Equal(0, reopened.DeleteBefore(second, paced: true));
            Assert.False(File.Exists(retired));
        }
    }

    [Fact]
    public void segments_roll_at_their_size_and_whole_indexed_segments_are_deleted_but_never_the_active_one()
    {
        using var journal = EventJournal.Open(_directory, segmentBytes: 512);
        var ends = Enumerable.Range(0, 20).Select(i => journal.Append([Event($"m-{i}")])).ToList();
        Assert.True(journal.SegmentCount >= 4, $"{journal.SegmentCount} segments");
        Assert.Equal(20, ReadAll(journal).Count);

        var deleted = journal.DeleteBefore(ends[9]);
        Assert.True(deleted >= 1);
        Assert.True(journal.Start <= ends[9]);
        // What was not deleted still reads from the first position kept; the middle of the deleted range is gone.
        using (var reader = journal.OpenReader(ends[9]))
        {
            var rest = new List<CollectedEvent>();
            while (reader.TryRead(journal.End, rest)) { }
            Assert.Equal(Enumerable.Range(10, 10).Select(i => $"m-{i}"), rest.Select(e => e.MessageId));
        }

        journal.DeleteBefore(journal.End);
        Assert.Equal(1, journal.SegmentCount);
        Assert.Single(Directory.GetFiles(_directory, "*.tjl"));
        var before = journal.End;
        Assert.True(journal.Append([Event("after")]) > before);
        Assert.Equal("after", ReadAll(journal)[^1].MessageId);
    }

    [Fact]
    public void a_torn_last_record_is_cut_off_when_the_journal_opens()
    {
        long end;
        using (var journal = EventJournal.Open(_directory))
        {
            journal.Append([Event("a")]);
            end = journal.Append([Event("b")]);
        }

        // A crash in the middle of writing the next record: its header and part of its payload reached the file.
        var segment = Directory.GetFiles(_directory, "*.tjl").Single();
        var firstRecord = File.ReadAllBytes(segment)[..(int)(end / 2)];
        AppendBytes(segment, firstRecord[..(firstRecord.Length - 7)]);

        using var reopened = EventJournal.Open(_directory);

        Assert.NotNull(reopened.Repair);
        Assert.Equal(end, reopened.Repair!.Offset);
        Assert.Equal(firstRecord.Length - 7, reopened.Repair.BytesDropped);
        Assert.Contains("past the end of the file", reopened.Repair.Reason, StringComparison.Ordinal);
        Assert.Equal(end, reopened.End);
        Assert.Equal(end, new FileInfo(segment).Length);
        reopened.Append([Event("c")]);
        Assert.Equal(["a", "b", "c"], ReadAll(reopened).Select(e => e.MessageId));
    }

    [Fact]
    public void garbage_after_the_last_record_is_cut_off_and_so_is_a_torn_header()
    {
        long end;
        using (var journal = EventJournal.Open(_directory))
        {
            end = journal.Append([Event("a")]);
        }

        var segment = Directory.GetFiles(_directory, "*.tjl").Single();
        AppendBytes(segment, [0x54, 0x4A, 0x4C, 0x31, 1, 2, 3]);
        using (var reopened = EventJournal.Open(_directory))
        {
            Assert.Equal(end, reopened.End);
            Assert.Contains("incomplete header", reopened.Repair!.Reason, StringComparison.Ordinal);
        }

        AppendBytes(segment, new byte[4096]);
        using (var again = EventJournal.Open(_directory))
        {
            Assert.Equal(end, again.End);
            Assert.Equal(4096, again.Repair!.BytesDropped);
            Assert.Equal(["a"], ReadAll(again).Select(e => e.MessageId));
        }
    }

    [Fact]
    public void a_corrupt_record_with_valid_records_after_it_stops_the_open_naming_the_file_and_offset()
    {
        long second;
        using (var journal = EventJournal.Open(_directory))
        {
            second = journal.Append([Event("a")]);
            journal.Append([Event("b")]);
            journal.Append([Event("c")]);
        }

        var segment = Directory.GetFiles(_directory, "*.tjl").Single();
        FlipByte(segment, second + 40);

        var error = Assert.Throws<JournalException>(() => EventJournal.Open(_directory));

        Assert.Contains(segment, error.Message, StringComparison.Ordinal);
        Assert.Contains($"the record at offset {second} is corrupt (the payload's checksum does not match)", error.Message, StringComparison.Ordinal);
        Assert.Contains("a valid record follows", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void a_corrupt_record_in_an_older_segment_is_reported_by_the_reader_with_the_file_and_offset()
    {
        using (var journal = EventJournal.Open(_directory, segmentBytes: 512))
        {
            for (var i = 0; i < 10; i++) { journal.Append([Event($"m-{i}")]); }
        }

        var first = Directory.GetFiles(_directory, "*.tjl").Order(StringComparer.Ordinal).First();
        var firstLength = new FileInfo(first).Length;
        FlipByte(first, firstLength - 3);
        using var reopened = EventJournal.Open(_directory, segmentBytes: 512);
        using var reader = reopened.OpenReader(reopened.Start);
        var events = new List<CollectedEvent>();

        var error = Assert.Throws<JournalException>(() => { while (reader.TryRead(reopened.End, events)) { } });

        Assert.Contains(first, error.Message, StringComparison.Ordinal);
        Assert.Contains($"the record at offset {reader.Position} ", error.Message, StringComparison.Ordinal);
        Assert.Contains("checksum", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void a_missing_segment_stops_the_open_naming_the_gap()
    {
        using (var journal = EventJournal.Open(_directory, segmentBytes: 512))
        {
            for (var i = 0; i < 10; i++) { journal.Append([Event($"m-{i}")]); }
        }

        var segments = Directory.GetFiles(_directory, "*.tjl").Order(StringComparer.Ordinal).ToList();
        Assert.True(segments.Count >= 3);
        File.Delete(segments[1]);

        var error = Assert.Throws<JournalException>(() => EventJournal.Open(_directory, segmentBytes: 512));

        Assert.Contains(segments[0], error.Message, StringComparison.Ordinal);
        Assert.Contains("a segment is missing", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void a_reader_reads_no_record_past_the_limit_it_is_given()
    {
        using var journal = EventJournal.Open(_directory);
        var first = journal.Append([Event("one")]);
        journal.Append([Event("two")]);
        using var reader = journal.OpenReader(journal.Start);
        var read = new List<CollectedEvent>();

        while (reader.TryRead(first, read)) { }

        Assert.Equal(["one"], read.Select(e => e.MessageId));
        Assert.Equal(first, reader.Position);
        // Reading on: the first event's raw JSON is its own copy, not the reader's buffer, which the next record reused.
        while (reader.TryRead(journal.End, read)) { }
        Assert.Equal(["one", "two"], read.Select(e => e.MessageId));
        Assert.Equal(Event("one").Raw, read[0].Raw);
    }

    private static List<CollectedEvent> ReadAll(EventJournal journal)
    {
        using var reader = journal.OpenReader(journal.Start);
        var events = new List<CollectedEvent>();
        while (reader.TryRead(journal.End, events)) { }
        return events;
    }

    private static CollectedEvent Event(string messageId, DateTimeOffset? original = null, DateTimeOffset? sentAt = null) => new(
        messageId, "src_a", MessageType.Track, "Order Completed", "u-1", "a-1", "g-1", "p-0",
        new DateTimeOffset(2026, 11, 23, 10, 0, 0, TimeSpan.Zero), original, sentAt, new DateTimeOffset(2026, 11, 23, 10, 0, 1, TimeSpan.Zero),
        $$$"""{"type":"track","messageId":"{{{messageId}}}","properties":{"text":"é ü ✓ \u0000"}}""");

    private static void AppendBytes(string path, byte[] bytes)
    {
        using var file = new FileStream(path, FileMode.Append, FileAccess.Write);
        file.Write(bytes);
    }

    private static void FlipByte(string path, long offset)
    {
        using var file = new FileStream(path, FileMode.Open, FileAccess.ReadWrite);
        file.Position = offset;
        var b = file.ReadByte();
        file.Position = offset;
        file.WriteByte((byte)(b ^ 0xFF));
    }
}
