namespace Tessera.Server.Activation;

/// <summary>How one request went: sent, or failed with the reason; <see cref="Permanent"/> failures are not retried.</summary>
/// <param name="Record">Set by channels whose delivery produces something to log (a file export's files): the delivery's new payload.</param>
public readonly record struct SendResult(bool Sent, string? Error, bool Permanent, string? Record = null)
{
    public static readonly SendResult Ok = new(true, null, false);

    public static SendResult Produced(string record) => new(true, null, false, record);

    public static SendResult Failed(string error, bool permanent = false) => new(false, error, permanent);
}
