namespace Tessera.Testing;

/// <summary>
/// A server could not bind the port <see cref="TesseraProcess.FreePort"/> had found free: another process took it
/// first. <see cref="TesseraProcess.OnFreePortAsync{T}"/> starts again on a new port when a start throws this.
/// </summary>
public sealed class PortTakenException(int port, Exception inner) : Exception($"port {port} was taken by another process before it could be bound", inner)
{
    public int Port { get; } = port;
}
