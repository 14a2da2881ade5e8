using System.Diagnostics;
using System.Globalization;
using Npgsql;
using Tessera.Core.Identity;
using Tessera.Core.Profiles;
using Tessera.Storage.Postgres;

namespace Tessera.Benchmarks;

/// <summary>
/// Issue 3's append at the size the journal's indexer hands PostgreSQL (<c>MaxEventsPerCommit</c>, 20,000 events by
/// default), which BenchmarkDotNet's groups of 5,000 do not reach: <c>Tessera.Benchmarks pg-append [group] [rounds]
/// [runs]</c>. Each run opens a store on a fresh schema of the server <see cref="PostgresAppendBenchmarks.Server"/>
/// names, appends <c>rounds</c> groups of the load generator's events through <see cref="PostgresStore.AppendAsync(IReadOnlyList{Tessera.Core.Collection.CollectedEvent}, CancellationToken)"/>
/// (the first two not timed: warm-up), prints rows per second, and drops the schema; the median of the runs comes last.
/// </summary>
internal static class PostgresGroupAppend
{
    public static async Task RunAsync(int group, int rounds, int runs)
    {
        var template = Rows.Events(group, "t");
        var rates = new List<double>();
        for (var run = 1; run <= runs; run++)
        {
            var rate = await RunOnceAsync(template, group, rounds);
            rates.Add(rate);
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"run {run}: {rate:F0} rows/s, {1e6 / rate:F1} µs a row (groups of {group:N0}, {rounds - 2} timed)"));
        }

        rates.Sort();
        var median = rates[rates.Count / 2];
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"median of {runs}: {median:F0} rows/s, {1e6 / median:F1} µs a row"));
    }

    private static async Task<double> RunOnceAsync(List<Tessera.Core.Collection.CollectedEvent> template, int group, int rounds)
    {
        var server = PostgresAppendBenchmarks.Server;
        var schema = "bench_append_" + Guid.NewGuid().ToString("N")[..8];
        var options = new PostgresStoreOptions(new NpgsqlConnectionStringBuilder(server) { SearchPath = schema }.ConnectionString);
        try
        {
            await using var store = new PostgresStore(options, new ProfileEngine(IdentityRules.Default, ProfileRules.Default));
            await store.OpenAsync(CancellationToken.None);
            var timed = new Stopwatch();
            var each = new List<string>(rounds);
            for (var round = 0; round < rounds; round++)
            {
                var started = Stopwatch.GetTimestamp();
                // New messageIds every round, or the dedup would rightly drop them; the people are the same every round,
                // as they come back in the load generator's runs.
                var events = template.Select((e, i) => e with { MessageId = $"r{round}-{i}" }).ToList();
                if (round == 2) { timed.Start(); }
                await store.AppendAsync(events, CancellationToken.None);
                each.Add(Stopwatch.GetElapsedTime(started).TotalMilliseconds.ToString("F0", CultureInfo.InvariantCulture));
            }

            // The first rounds show the warm-up (JIT, PostgreSQL's caches of the new schema) the median leaves out.
            Console.WriteLine($"  ms a round: {string.Join(' ', each)}");

            return (rounds - 2) * (double)group / timed.Elapsed.TotalSeconds;
        }
        finally
        {
            await using var connection = new NpgsqlConnection(server);
            await connection.OpenAsync();
            await using var drop = new NpgsqlCommand($"DROP SCHEMA IF EXISTS {schema} CASCADE", connection);
            await drop.ExecuteNonQueryAsync();
        }
    }
}
