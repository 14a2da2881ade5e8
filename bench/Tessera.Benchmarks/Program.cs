using BenchmarkDotNet.Configs;
using BenchmarkDotNet.Diagnosers;
using BenchmarkDotNet.Exporters.Json;
using BenchmarkDotNet.Jobs;
using BenchmarkDotNet.Running;
using BenchmarkDotNet.Toolchains.InProcess.Emit;

if (args is ["pg-append", .. var rest])
{
    int Arg(int i, int fallback) => rest.Length > i ? int.Parse(rest[i], System.Globalization.CultureInfo.InvariantCulture) : fallback;
    await Tessera.Benchmarks.PostgresGroupAppend.RunAsync(group: Arg(0, 20_000), rounds: Arg(1, 14), runs: Arg(2, 3));
    return;
}

// Short runs, in process (no per-benchmark project build), so the whole set takes a few minutes on two cores.
var job = Job.ShortRun
    .WithWarmupCount(3)
    .WithIterationCount(8)
    .WithLaunchCount(1)
    .WithToolchain(InProcessEmitToolchain.Instance);
var config = DefaultConfig.Instance
    .AddJob(job)
    .AddDiagnoser(MemoryDiagnoser.Default)
    .AddExporter(JsonExporter.Brief)
    .WithOptions(ConfigOptions.DisableOptimizationsValidator);
BenchmarkSwitcher.FromAssembly(typeof(Program).Assembly).Run(args, config);
