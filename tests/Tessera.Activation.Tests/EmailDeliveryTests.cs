namespace Tessera.Activation.Tests;

/// <summary>Email destinations over SMTP, against the real SMTP server test.sh starts (postfix's smtp-sink writing each message to a file).</summary>
public sealed class EmailDeliveryTests
{
    private static string Host => Environment.GetEnvironmentVariable("TESSERA_TEST_SMTP_HOST") ?? "127.0.0.1";

    private static int Port => int.Parse(Environment.GetEnvironmentVariable("TESSERA_TEST_SMTP_PORT")
        ?? throw new InvalidOperationException("TESSERA_TEST_SMTP_PORT is not set: run `source scripts/deps/smtp.sh` (test.sh does it) to start the test SMTP server."), System.Globalization.CultureInfo.InvariantCulture);

    private static string MailDirectory => Environment.GetEnvironmentVariable("TESSERA_TEST_SMTP_DIR")
        ?? throw new InvalidOperationException("TESSERA_TEST_SMTP_DIR is not set: run `source scripts/deps/smtp.sh`.");

    /// <summary>The received messages (envelope and message, as smtp-sink wrote them) that contain <paramref name="marker"/>.</summary>
    private static List<string> MailsWith(string marker) =>
        [.. Directory.EnumerateFiles(MailDirectory).Select(f => File.ReadAllText(f)).Where(m => m.Contains(marker, StringComparison.Ordinal))];

    private static string Destination(string segment, string marker, string subject, string body, string extra = "") => $$$"""
        {"type":"email","segments":["{{{segment}}}"],"smtp":{"host":"{{{Host}}}","port":{{{Port}}},"security":"none"},
         "from":"Tessera <news@tessera.test>","to":"traits.email","subject":"{{{subject}}}","body":"{{{body}}} {{{marker}}}"{{{extra}}}}
        """;

    [Fact]
    public async Task an_audience_entry_sends_an_email_with_the_profiles_traits_filled_in()
    {
        var marker = "marker-" + Guid.NewGuid().ToString("N");
        await using var server = await Activation.StartAsync();
        var vip = await server.CreateSegmentAsync("VIP", """{"trait":"tier","op":"eq","value":"vip"}""");
        var destination = await server.CreateDestinationAsync(Destination(vip, marker,
            "Welcome to {{ segment.name }}, {{ traits.first_name }}", "Dear {{ traits.first_name }} {{ traits.last_name | upcase }}, your tier is {{ traits.tier }}. {{ traits.nickname | default: 'No nickname' }}."));

        await server.SendAsync("identify", """{"userId":"ann","traits":{"email":"ann.smith@example.com","first_name":"Ann","last_name":"Smith","tier":"vip"}}""");
        await Activation.EventuallyAsync(() => MailsWith(marker).Count == 1, "the email to reach the SMTP server");

        var mail = MailsWith(marker)[0];
        Assert.Contains("X-Rcpt-Args: <ann.smith@example.com>", mail, StringComparison.Ordinal);
        Assert.Contains("X-Mail-Args: <news@tessera.test>", mail, StringComparison.Ordinal);
        Assert.Contains("Subject: Welcome to VIP, Ann", mail, StringComparison.Ordinal);
        Assert.Contains("Dear Ann SMITH, your tier is vip. No nickname.", mail, StringComparison.Ordinal);
        await Activation.EventuallyAsync(async () => (await server.DeliveriesAsync(destination))[0]["status"]!.GetValue<string>() == "delivered", "the log to say delivered");
        var log = (await server.DeliveriesAsync(destination))[0];
        Assert.Contains($"Message-Id: <{log["idempotencyKey"]!.GetValue<string>()}@tessera>", mail, StringComparison.OrdinalIgnoreCase);
        Assert.Equal("ann.smith@example.com", log["payload"]!["to"]!.GetValue<string>());
    }

    [Fact]
    public async Task a_profile_without_an_address_is_skipped_with_the_reason()
    {
        var marker = "marker-" + Guid.NewGuid().ToString("N");
        await using var server = await Activation.StartAsync();
        var vip = await server.CreateSegmentAsync("VIP", """{"trait":"tier","op":"eq","value":"vip"}""");
        var destination = await server.CreateDestinationAsync(Destination(vip, marker, "Hi", "Hello"));
        await server.SendAsync("identify", """{"userId":"no-mail","traits":{"tier":"vip"}}""");
        await Activation.EventuallyAsync(async () => (await server.DeliveriesAsync(destination)).Count == 1, "the delivery logged");
        var log = (await server.DeliveriesAsync(destination))[0];
        Assert.Equal("skipped", log["status"]!.GetValue<string>());
        Assert.Equal("no email address in traits.email", log["reason"]!.GetValue<string>());
        Assert.Empty(MailsWith(marker));
    }

    [Fact]
    public async Task an_smtp_server_that_is_not_there_is_retried_then_dead_lettered()
    {
        await using var server = await Activation.StartAsync();
        var vip = await server.CreateSegmentAsync("VIP", """{"trait":"tier","op":"eq","value":"vip"}""");
        var closedPort = Testing.TesseraProcess.FreePort();
        var destination = await server.CreateDestinationAsync($$$"""
            {"type":"email","segments":["{{{vip}}}"],"smtp":{"host":"127.0.0.1","port":{{{closedPort}}},"security":"none"},
             "from":"news@tessera.test","subject":"Hi","body":"Hello"}
            """);
        await server.SendAsync("identify", """{"userId":"z","traits":{"email":"z@example.com","tier":"vip"}}""");
        await Activation.EventuallyAsync(async () => (await server.DeliveriesAsync(destination, "dead")).Count == 1, "the dead letter");
        var dead = (await server.DeliveriesAsync(destination, "dead"))[0];
        Assert.Equal(4, dead["attempts"]!.GetValue<int>());
        Assert.False(string.IsNullOrEmpty(dead["lastError"]!.GetValue<string>()));
    }
}
