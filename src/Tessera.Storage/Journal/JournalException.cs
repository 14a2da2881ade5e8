namespace Tessera.Storage.Journal;

/// <summary>
/// The journal cannot be used as it is: a corrupt record before its end, a missing segment, a directory another
/// process holds, a write that failed. The message names the file and offset and says what an operator can do.
/// </summary>
public sealed class JournalException : Exception
{
    public JournalException() { }
    public JournalException(string message) : base(message) { }
    public JournalException(string message, Exception innerException) : base(message, innerException) { }
}
