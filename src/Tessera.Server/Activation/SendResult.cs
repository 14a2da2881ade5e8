namespace Tessera.Server.Activation;

/// <summary>How one request went: sent, or failed with the reason; <see cref="Permanent"/> failures are not retried.</summary>
public readonly record struct SendResult(bool Sent, string? Error, bool Permanent)
{
    public static readonly SendResult Ok = new(true, null, false);

    public static SendResult Failed(string error, bool permanent = false) => new(false, error, permanent);
}
