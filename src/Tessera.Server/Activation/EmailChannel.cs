using System.Text.Json.Nodes;
using MailKit;
using MailKit.Net.Smtp;
using MailKit.Security;
using MimeKit;
using Polly;
using Polly.Retry;
using Polly.Timeout;
using Tessera.Core.Activation;
using Tessera.Storage.Activation;

namespace Tessera.Server.Activation;

/// <summary>
/// Sends email deliveries over SMTP with MailKit: the message was rendered when the delivery was derived, so a retry
/// sends the same one; its <c>Message-ID</c> is built from the idempotency key (and the key is in
/// <c>X-Tessera-Idempotency-Key</c>), so a receiving system can drop a resend. The deliveries of one round share one
/// SMTP connection. A 5xx answer to a message (mailbox unknown, refused) is permanent; connection and 4xx
/// failures are retried (Polly within the attempt, then the durable schedule).
/// </summary>
public sealed class EmailChannel
{
    private readonly ResiliencePipeline _pipeline;

    public EmailChannel(ActivationOptions options)
    {
        var builder = new ResiliencePipelineBuilder();
        if (options.QuickRetries > 0)
        {
            builder.AddRetry(new RetryStrategyOptions
            {
                MaxRetryAttempts = options.QuickRetries,
                Delay = options.QuickRetryDelay,
                BackoffType = DelayBackoffType.Exponential,
                UseJitter = true,
                ShouldHandle = new PredicateBuilder().Handle<Exception>(e => !IsPermanent(e) && e is not OperationCanceledException || e is TimeoutRejectedException),
            });
        }

        _pipeline = builder.AddTimeout(options.RequestTimeout).Build();
    }

    /// <summary>Sends each delivery; one result per delivery, in order.</summary>
    public async Task<IReadOnlyList<SendResult>> SendAsync(Destination destination, IReadOnlyList<Delivery> deliveries, CancellationToken cancellationToken)
    {
        var settings = destination.Email ?? throw new InvalidOperationException($"destination {destination.Id} has no email settings");
        var results = new SendResult[deliveries.Count];
        using var client = new SmtpClient();
        try
        {
            for (var i = 0; i < deliveries.Count; i++)
            {
                var message = Message(deliveries[i]);
                try
                {
                    await _pipeline.ExecuteAsync(async token =>
                    {
                        if (!client.IsConnected)
                        {
                            await client.ConnectAsync(settings.Smtp.Host, settings.Smtp.Port, Security(settings.Smtp.Security), token);
                            if (settings.Smtp.Username is { Length: > 0 } user) { await client.AuthenticateAsync(user, settings.Smtp.Password ?? "", token); }
                        }

                        await client.SendAsync(message, token);
                    }, cancellationToken);
                    results[i] = SendResult.Ok;
                }
                catch (Exception e) when (e is not OperationCanceledException || e is TimeoutRejectedException)
                {
                    results[i] = SendResult.Failed(Describe(e), IsPermanent(e));
                    if (client.IsConnected && e is not SmtpCommandException)
                    {
                        // The conversation may be in any state: start the next message on a fresh connection.
                        client.Disconnect(false, CancellationToken.None);
                    }
                }
            }
        }
        finally
        {
            if (client.IsConnected)
            {
                try
                {
                    await client.DisconnectAsync(true, CancellationToken.None);
                }
                catch (Exception e) when (e is IOException or ProtocolException or SmtpProtocolException or SmtpCommandException)
                {
                    // The messages were accepted already; a failed QUIT changes nothing.
                }
            }
        }

        return results;
    }

    private static MimeMessage Message(Delivery delivery)
    {
        var payload = JsonNode.Parse(delivery.Payload)!.AsObject();
        var message = new MimeMessage();
        message.From.Add(MailboxAddress.Parse(payload["from"]!.GetValue<string>()));
        message.To.Add(MailboxAddress.Parse(payload["to"]!.GetValue<string>()));
        message.Subject = payload["subject"]?.GetValue<string>() ?? "";
        message.MessageId = $"{delivery.IdempotencyKey}@tessera";
        message.Headers.Add("X-Tessera-Idempotency-Key", delivery.IdempotencyKey);
        message.Body = new TextPart(payload["html"]?.GetValue<bool>() == true ? "html" : "plain") { Text = payload["body"]?.GetValue<string>() ?? "" };
        return message;
    }

    private static SecureSocketOptions Security(string security) => security switch
    {
        "none" => SecureSocketOptions.None,
        "starttls" => SecureSocketOptions.StartTls,
        "ssl" => SecureSocketOptions.SslOnConnect,
        _ => SecureSocketOptions.Auto,
    };

    private static bool IsPermanent(Exception e) =>
        e is SmtpCommandException { StatusCode: >= (SmtpStatusCode)500 } || e is AuthenticationException || e is ParseException or FormatException;

    private static string Describe(Exception e) => e switch
    {
        SmtpCommandException c => $"SMTP {(int)c.StatusCode}: {c.Message}",
        TimeoutRejectedException t => $"no answer within {t.Timeout.TotalSeconds:0.#} s",
        _ => e.Message,
    };
}
