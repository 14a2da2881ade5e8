using System.Diagnostics;
using System.Net.Http.Headers;
using System.Text;

namespace Tessera.LoadGen;

/// <summary>The activation benchmarks' profiles: N identifies (<c>member-i</c>, traits <c>bench_group</c>, <c>email</c>, <c>first_name</c>) in batches of 500, 8 at a time.</summary>
internal static class BenchProfiles
{
    public static async Task LoadAsync(LoadOptions options, string url, int n)
    {
        using var collect = Collect(options);
        var loading = Stopwatch.StartNew();
        var chunks = Enumerable.Range(0, (n + 499) / 500).Select(c => Enumerable.Range(c * 500, Math.Min(500, n - (c * 500))));
        await Parallel.ForEachAsync(chunks, new ParallelOptions { MaxDegreeOfParallelism = 8 }, async (chunk, token) =>
        {
            var batch = string.Join(",", chunk.Select(i => $$$"""{"type":"identify","userId":"member-{{{i}}}","traits":{"bench_group":"g","email":"member-{{{i}}}@example.com","first_name":"M{{{i}}}"}}"""));
            using var response = await collect.PostAsync(new Uri(url + "/v1/batch"), new StringContent($$$"""{"batch":[{{{batch}}}]}""", Encoding.UTF8, "application/json"), token);
            response.EnsureSuccessStatusCode();
        });
        Console.WriteLine($"  loaded {n:N0} profiles in {loading.Elapsed.TotalSeconds:N1} s");
    }

    /// <summary>A client of the collection API with the write key as Basic auth.</summary>
    public static HttpClient Collect(LoadOptions options)
    {
        var collect = new HttpClient { Timeout = TimeSpan.FromSeconds(120) };
        collect.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Basic", Convert.ToBase64String(Encoding.UTF8.GetBytes(options.WriteKey + ":")));
        return collect;
    }

    /// <summary>
    /// Sends a management request again while it answers 503: after a bulk load the store indexes behind the journal,
    /// and /api reads wait for it at most 10 s before answering 503 (the read barrier).
    /// </summary>
    public static async Task<HttpResponseMessage> PatientlyAsync(Func<Task<HttpResponseMessage>> send)
    {
        var deadline = Stopwatch.GetTimestamp() + (600 * Stopwatch.Frequency);
        while (true)
        {
            var response = await send();
            if (response.StatusCode != System.Net.HttpStatusCode.ServiceUnavailable || Stopwatch.GetTimestamp() > deadline) { return response; }
            response.Dispose();
            await Task.Delay(500);
        }
    }
}
