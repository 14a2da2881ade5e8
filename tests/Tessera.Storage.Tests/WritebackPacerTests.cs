using System.Runtime.InteropServices;
using Microsoft.Win32.SafeHandles;
using Tessera.Storage.DuckDb;
using Tessera.Testing;

namespace Tessera.Storage.Tests;

/// <summary>
/// The store file's paced writeback (<see cref="WritebackPacer"/>): dirty pages of the file go to the disk every few
/// milliseconds instead of waiting for DuckDB's fsync at the end of a checkpoint. Read with Linux's <c>cachestat</c>,
/// which counts a file's dirty pages in the page cache.
/// </summary>
public sealed partial class WritebackPacerTests
{
    private const int Pages = 4096; // 16 MB of 4 KB pages

    [Fact]
    public async Task the_pacer_sends_a_files_dirty_pages_to_the_disk_when_nothing_syncs_it()
    {
        var path = Path.Combine(TempDirectory.Create("writeback"), "paced.bin");
        var block = new byte[Pages * 4096];
        Random.Shared.NextBytes(block);
        using var file = File.OpenHandle(path, FileMode.CreateNew, FileAccess.ReadWrite);
        RandomAccess.Write(file, block, 0);

        // Left alone, the kernel keeps them dirty for half a minute (dirty_expire_centisecs): the check can fail.
        // A kernel older than 6.5 has no cachestat: then only that the pacer runs without failing is checked.
        var before = Dirty(file);
        await Task.Delay(300);
        var alone = Dirty(file);
        Assert.True(before is null || (before >= Pages * 3 / 4 && alone >= Pages * 3 / 4), $"written and not synced, {before} then {alone} of {Pages} pages were dirty");

        using var pacer = WritebackPacer.Start(path, TimeSpan.FromMilliseconds(10))!;
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(5);
        long? paced;
        while (((paced = Dirty(file)) ?? 0) > Pages / 10 && DateTime.UtcNow < deadline) { await Task.Delay(20); }
        while (pacer.Calls == 0 && DateTime.UtcNow < deadline) { await Task.Delay(10); }
        Assert.True(paced is null || paced <= Pages / 10, $"{paced} of {Pages} pages still dirty 5 s after pacing started");
        Assert.Null(pacer.Failure);
        Assert.True(pacer.Calls > 0);
    }

    /// <summary>The file's dirty pages (Linux 6.5's <c>cachestat</c>, system call 451); null on a kernel without it.</summary>
    private static long? Dirty(SafeFileHandle file)
    {
        const int NoSuchCall = 38; // ENOSYS
        var range = new CacheStatRange(0, 0);
        if (CacheStat(451, (int)file.DangerousGetHandle(), in range, out var stat, 0) != 0)
        {
            var errno = Marshal.GetLastPInvokeError();
            return errno == NoSuchCall ? null : throw new InvalidOperationException($"cachestat failed with errno {errno}");
        }

        return (long)stat.Dirty;
    }

    [StructLayout(LayoutKind.Sequential)]
    private readonly record struct CacheStatRange(ulong Offset, ulong Length);

    [StructLayout(LayoutKind.Sequential)]
    private readonly record struct CacheStatResult(ulong Cache, ulong Dirty, ulong Writeback, ulong Evicted, ulong RecentlyEvicted);

    [LibraryImport("libc", EntryPoint = "syscall", SetLastError = true)]
    private static partial long CacheStat(long number, int fd, in CacheStatRange range, out CacheStatResult stat, uint flags);
}
