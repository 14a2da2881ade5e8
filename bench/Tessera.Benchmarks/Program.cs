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
