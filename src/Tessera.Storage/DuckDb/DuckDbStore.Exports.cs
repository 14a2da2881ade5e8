using DuckDB.NET.Data;
using Tessera.Storage.Activation;

namespace Tessera.Storage.DuckDb;

/// <summary>Runs of file destinations in the delivery log, under the activation lock like every other delivery write.</summary>
public sealed partial class DuckDbStore : IExportRunStore
{
    public async Task<ExportRunState> RunStateAsync(string destinationId, CancellationToken cancellationToken)
    {
        try
        {
            return (await ReadAllAsync(ActivationSql.RunState, r => new ExportRunState(r.IsDBNull(0) ? null : r.GetInt64(0), !r.IsDBNull(1) && r.GetBoolean(1)),
                cancellationToken, destinationId, DeliveryKind.FileExport))[0];
        }
        catch (DuckDBException e)
        {
            throw DuckDbErrors.Translate(e, "read file export runs", options.Path);
        }
    }

    public async Task<Delivery?> AddRunAsync(NewDelivery run, CancellationToken cancellationToken)
    {
        await _activationLock.WaitAsync(cancellationToken);
        try
        {
            using var connection = OpenReader();
            await LoadDeliveryIdsAsync(connection, cancellationToken);
            if (await ScalarOnAsync<long?>(connection, "SELECT id FROM deliveries WHERE idempotency_key = $1", cancellationToken, run.IdempotencyKey) is not null) { return null; }
            var id = _lastDeliveryId + 1;
            using var insert = Command(connection, $"""
                INSERT INTO deliveries ({ActivationRows.DeliveryColumns}, claimed_by, claimed_until)
                VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, 0, $10, NULL, $10, $10, NULL, NULL, NULL)
                """, [id, run.DestinationId, run.ProfileId, run.Kind, run.CauseId, run.IdempotencyKey, run.Payload, run.Status, run.Reason, run.CreatedAt]);
            await insert.ExecuteNonQueryAsync(cancellationToken);
            _lastDeliveryId = id;
            return new Delivery(id, run.DestinationId, run.ProfileId, run.Kind, run.CauseId, run.IdempotencyKey, run.Payload, run.Status, run.Reason, 0, run.CreatedAt, null, run.CreatedAt, run.CreatedAt, null);
        }
        catch (DuckDBException e)
        {
            throw DuckDbErrors.Translate(e, "add a file export run", options.Path);
        }
        finally
        {
            _activationLock.Release();
        }
    }

    public async Task<long> LastAudienceChangeIdAsync(CancellationToken cancellationToken) =>
        await ScalarAsync<long>("SELECT coalesce(max(id), 0) FROM audience_changes", cancellationToken);
}
