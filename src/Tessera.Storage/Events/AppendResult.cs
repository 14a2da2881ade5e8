namespace Tessera.Storage.Events;

/// <summary>What an append did: how many messages were stored and how many were dropped as duplicates.</summary>
public readonly record struct AppendResult(int Stored, int Duplicates);
