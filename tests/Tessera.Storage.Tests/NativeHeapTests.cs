using System.Runtime.InteropServices;

namespace Tessera.Storage.Tests;

/// <summary>
/// The C library's heap: one per process, so this runs alone, not beside tests whose threads allocate and free in it
/// while this reads the process's resident set.
/// </summary>
[Collection(nameof(NativeHeapTests))]
[CollectionDefinition(nameof(NativeHeapTests), DisableParallelization = true)]
public sealed class NativeHeapTests
{
    /// <summary>
    /// Memory freed inside the C library's heap (between blocks still held, so not at the top the heap shrinks from by
    /// itself) stays resident until a trim gives its pages back.
    /// </summary>
    [Fact]
    public unsafe void a_trim_gives_back_the_pages_freed_inside_the_c_librarys_heap()
    {
        if (!OperatingSystem.IsLinux())
        {
            Assert.False(NativeHeap.Trim());
            return;
        }

        // 1,000 blocks of 64 KB (under malloc's threshold for blocks of their own mappings, so inside its heap), each
        // written to; every tenth and the last are kept, so the other 57 MB are free chunks between held ones.
        var blocks = new nint[1_000];
        for (var i = 0; i < blocks.Length; i++)
        {
            var block = (byte*)NativeMemory.Alloc(64 * 1024);
            new Span<byte>(block, 64 * 1024).Fill(1);
            blocks[i] = (nint)block;
        }
        try
        {
            for (var i = 0; i < blocks.Length - 1; i++)
            {
                if (i % 10 != 0) { NativeMemory.Free((void*)blocks[i]); blocks[i] = 0; }
            }

            var before = ResidentBytes();
            Assert.True(NativeHeap.Trim());
            var after = ResidentBytes();
            Assert.True(before - after > (40L << 20), $"resident {before:N0} → {after:N0} bytes after freeing 57 MB inside the heap");
        }
        finally
        {
            foreach (var block in blocks)
            {
                if (block != 0) { NativeMemory.Free((void*)block); }
            }
        }
    }

    private static long ResidentBytes() => long.Parse(File.ReadAllText("/proc/self/statm").Split(' ')[1]) * Environment.SystemPageSize;
}
