using Tessera.Storage.Activation;

namespace Tessera.Storage.Postgres;

/// <summary>Runs of file destinations in the delivery log; the unique idempotency key lets only one process add a given run.</summary>
public sealed partial class PostgresStore : IExportRunStore
{
    public async Task<ExportRunState> RunStateAsync(string destinationId, CancellationToken cancellationToken) =>
        (await RunAsync("read file export runs", connection => ReadAllAsync(connection, ActivationSql.RunState,
            r => new ExportRunState(r.IsDBNull(0) ? null : r.GetInt64(0), !r.IsDBNull(1) && r.GetBoolean(1)), cancellationToken, destinationId, DeliveryKind.FileExport), cancellationToken))[0];

    public async Task<Delivery?> AddRunAsync(NewDelivery run, CancellationToken cancellationToken) =>
        await RunAsync("add a file export run", async connection =>
        {
            var id = await ScalarAsync<long?>(connection, """
                INSERT INTO deliveries (destination_id, profile_id, kind, cause_id, idempotency_key, payload, status, reason, attempts, next_attempt_at, created_at, updated_at)
                VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 0, $9, $9, $9)
                ON CONFLICT (idempotency_key) DO NOTHING
                RETURNING id
                """, cancellationToken, run.DestinationId, run.ProfileId, run.Kind, run.CauseId, run.IdempotencyKey, run.Payload, run.Status, run.Reason, run.CreatedAt.UtcDateTime);
            return id is { } added
                ? new Delivery(added, run.DestinationId, run.ProfileId, run.Kind, run.CauseId, run.IdempotencyKey, run.Payload, run.Status, run.Reason, 0, run.CreatedAt, null, run.CreatedAt, run.CreatedAt, null)
                : null;
        }, cancellationToken);

    public async Task<long> LastAudienceChangeIdAsync(CancellationToken cancellationToken) =>
        await RunAsync("read the audience change log's end", connection => ScalarAsync<long>(connection, "SELECT coalesce(max(id), 0) FROM audience_changes", cancellationToken), cancellationToken);
}
