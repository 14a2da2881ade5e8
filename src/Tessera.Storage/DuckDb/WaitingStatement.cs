using System.Data.Common;
using System.Runtime.InteropServices;
using DuckDB.NET.Data;

namespace Tessera.Storage.DuckDb;

/// <summary>
/// Runs a statement through DuckDB's C API the way DuckDB.NET does, except for how the calling thread waits while
/// DuckDB's worker thread runs the statement's tasks. DuckDB's own loop (under <c>duckdb_execute_prepared</c>) polls its
/// task queue without pause until the statement is done; the committer's <c>COMMIT</c> (which carries DuckDB's
/// checkpoints) is mostly picked up by the worker, so flat out the committer's thread spent ~14 % of the server's CPU
/// samples polling (docs/benchmarks.md, "The committer's polling"), CPU the engine's and the requests' threads want on
/// two cores. Here the thread runs whatever task it can take, and when none is left for it, yields, then sleeps a
/// millisecond at a time until DuckDB reports the statement done.
/// </summary>
internal static partial class WaitingStatement
{
    // Polls that only yield the core before the thread sleeps: a short statement's tasks (a commit at a low rate takes
    // ~1-2 ms) finish inside them.
    private const int YieldingPolls = 32;

    private enum PendingState
    {
        ResultReady = 0,
        ResultNotReady = 1,
        Error = 2,
        NoTasksAvailable = 3,
    }

    /// <summary>Runs <paramref name="sql"/> (no parameters, no rows wanted) on <paramref name="connection"/>; throws <see cref="DuckDbStatementException"/> with DuckDB's message when it fails.</summary>
    public static void Run(DuckDBConnection connection, string sql)
    {
        // DuckDB's destroy functions take null handles and a zeroed result, so one finally frees whatever was made.
        var prepared = IntPtr.Zero;
        var pending = IntPtr.Zero;
        var result = default(NativeResult);
        try
        {
            if (Prepare(connection.NativeConnection.DangerousGetHandle(), sql, out prepared) != 0) { throw Failed(PrepareError(prepared)); }
            if (PendingPrepared(prepared, out pending) != 0) { throw Failed(PendingError(pending)); }
            Wait(pending);
            if (ExecutePending(pending, ref result) != 0) { throw Failed(ResultError(ref result)); }
        }
        finally
        {
            DestroyResult(ref result);
            DestroyPending(ref pending);
            DestroyPrepared(ref prepared);
        }
    }

    private static void Wait(IntPtr pending)
    {
        for (var idle = 0; ;)
        {
            switch ((PendingState)ExecuteTask(pending))
            {
                case PendingState.ResultReady:
                    return;
                case PendingState.Error:
                    throw Failed(PendingError(pending));
                case PendingState.NoTasksAvailable:
                    // DuckDB's worker holds the statement's tasks: give the core to someone with work. Windows sleeps
                    // to its timer's 15.6 ms unless a process asks for finer: there it only yields.
                    if (idle++ < YieldingPolls || OperatingSystem.IsWindows()) { Thread.Yield(); }
                    else { Thread.Sleep(1); }
                    break;
                default:
                    idle = 0;
                    break;
            }
        }
    }

    /// <summary>The exception for DuckDB's error <paramref name="message"/> (a C string it owns).</summary>
    private static DuckDbStatementException Failed(IntPtr message) =>
        new(Marshal.PtrToStringUTF8(message) ?? "DuckDB gave no message");

    /// <summary><c>duckdb_result</c> as the C API lays it out (filled by <c>duckdb_execute_pending</c>, freed by <c>duckdb_destroy_result</c>).</summary>
    [StructLayout(LayoutKind.Sequential)]
    private struct NativeResult
    {
        public ulong ColumnCount;
        public ulong RowCount;
        public ulong RowsChanged;
        public IntPtr Columns;
        public IntPtr ErrorMessage;
        public IntPtr InternalData;
    }

    [LibraryImport("duckdb", EntryPoint = "duckdb_prepare", StringMarshalling = StringMarshalling.Utf8)]
    private static partial int Prepare(IntPtr connection, string query, out IntPtr prepared);

    [LibraryImport("duckdb", EntryPoint = "duckdb_prepare_error")]
    private static partial IntPtr PrepareError(IntPtr prepared);

    [LibraryImport("duckdb", EntryPoint = "duckdb_destroy_prepare")]
    private static partial void DestroyPrepared(ref IntPtr prepared);

    [LibraryImport("duckdb", EntryPoint = "duckdb_pending_prepared")]
    private static partial int PendingPrepared(IntPtr prepared, out IntPtr pending);

    [LibraryImport("duckdb", EntryPoint = "duckdb_pending_error")]
    private static partial IntPtr PendingError(IntPtr pending);

    [LibraryImport("duckdb", EntryPoint = "duckdb_pending_execute_task")]
    private static partial int ExecuteTask(IntPtr pending);

    [LibraryImport("duckdb", EntryPoint = "duckdb_execute_pending")]
    private static partial int ExecutePending(IntPtr pending, ref NativeResult result);

    [LibraryImport("duckdb", EntryPoint = "duckdb_destroy_pending")]
    private static partial void DestroyPending(ref IntPtr pending);

    [LibraryImport("duckdb", EntryPoint = "duckdb_result_error")]
    private static partial IntPtr ResultError(ref NativeResult result);

    [LibraryImport("duckdb", EntryPoint = "duckdb_destroy_result")]
    private static partial void DestroyResult(ref NativeResult result);
}

/// <summary>A statement run by <see cref="WaitingStatement"/> failed; the message is DuckDB's (as DuckDB.NET's own exception carries it).</summary>
internal sealed class DuckDbStatementException(string message) : DbException(message);
