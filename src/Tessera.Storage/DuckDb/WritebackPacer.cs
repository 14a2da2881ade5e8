using System.Runtime.InteropServices;
using Microsoft.Win32.SafeHandles;

namespace Tessera.Storage.DuckDb;

/// <summary>
/// Starts the kernel writing the store file's dirty pages every <see cref="DuckDbStoreOptions.WritebackInterval"/>,
/// so that what a DuckDB checkpoint writes over the second or so it spends compressing goes to the disk as it is made,
/// instead of all at once at the checkpoint's closing fsync. That burst (tens of MB) held the journal's fsync, and
/// with it every request waiting for its 200, for 50-180 ms at each checkpoint; paced (first from outside the process),
/// the journal's slowest fsync in a 20 s run at 10,000 events/s was 44-68 ms against 95-183 ms, and the 200s' p99 lower
/// in 5 of 6 interleaved realtime pairs (docs/benchmarks.md, "Paced writeback of the store file";
/// <c>bench/journal-timeline.sh</c> shows the stalls beside the checkpoints).
/// </summary>
/// <remarks>
/// Linux only (<c>sync_file_range</c> with <c>SYNC_FILE_RANGE_WRITE</c>: it queues the writes and returns, without waiting
/// for them or flushing the disk's cache, so durability is untouched: DuckDB still syncs what it needs). Elsewhere, or
/// if the call fails (<see cref="Failure"/>), nothing is paced and the store works as before. The pacer holds a
/// read-only handle on the file: closing it drops the process's POSIX locks on the file, DuckDB's included, so it is
/// disposed only after DuckDB closed the file.
/// </remarks>
internal sealed partial class WritebackPacer : IDisposable
{
    private const uint SyncFileRangeWrite = 2;

    private readonly SafeFileHandle _file;
    private readonly TimeSpan _interval;
    private readonly ManualResetEventSlim _stop = new(false);
    private readonly Thread _thread;
    private long _calls;
    private volatile string? _failure;

    private WritebackPacer(SafeFileHandle file, TimeSpan interval)
    {
        _file = file;
        _interval = interval;
        _thread = new Thread(Run) { IsBackground = true, Name = "Tessera writeback pacer" };
        _thread.Start();
    }

    /// <summary>Times the kernel was asked to start writing the file's dirty pages.</summary>
    public long Calls => Interlocked.Read(ref _calls);

    /// <summary>Why pacing stopped (the call failed), or null while it runs.</summary>
    public string? Failure => _failure;

    /// <summary>A pacer for <paramref name="path"/>; null when pacing is off (a zero interval) or the platform has no way to do it.</summary>
    public static WritebackPacer? Start(string path, TimeSpan interval)
    {
        if (interval <= TimeSpan.Zero || !OperatingSystem.IsLinux()) { return null; }
        return new WritebackPacer(File.OpenHandle(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete), interval);
    }

    public void Dispose()
    {
        _stop.Set();
        _thread.Join();
        _stop.Dispose();
        _file.Dispose();
    }

    private void Run()
    {
        while (!_stop.Wait(_interval))
        {
            if (SyncFileRange(_file, 0, 0, SyncFileRangeWrite) != 0)
            {
                _failure = $"sync_file_range failed with errno {Marshal.GetLastPInvokeError()}";
                return;
            }

            Interlocked.Increment(ref _calls);
        }
    }

    [LibraryImport("libc", EntryPoint = "sync_file_range", SetLastError = true)]
    private static partial int SyncFileRange(SafeFileHandle fd, long offset, long bytes, uint flags);
}
