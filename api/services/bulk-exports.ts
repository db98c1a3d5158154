import { randomUUID } from 'node:crypto';
import type { Context } from 'koa';
import { durationMs } from '../../common/durations';
import {
  BULK_EXPORT_TOO_LARGE,
  DEFAULT_BULK_EXPORT_RETENTION, type BulkExportFormat, type BulkExportInput, type BulkExportKind } from '../../common/bulk-export';
import { workflowIds } from '../../common/ids';
import type { Actor, Role } from '../../common/roles';
import { appendAudit } from '../../db/audit';
import { bulkExportFile, countSelection, findBulkExport, insertBulkExport, updateBulkExport, type BulkExportRow } from '../../db/bulk-exports';
import { recordPhiAccess } from '../../db/phi-access';
import type { bulkExportWorkflow } from '../../workflows/bulk-export';
import { requireRole } from '../auth';
import type { ApiDeps } from '../deps';
import { logPhiRead, phiVia } from '../patient-access';
import { Problem, problems } from '../problem';

/** How long a file is kept when BULK_EXPORT_RETENTION is not configured (the expiry's default too). */
const DEFAULT_BULK_EXPORT_RETENTION_MS = durationMs(DEFAULT_BULK_EXPORT_RETENTION);

/** The most records one export holds when BULK_EXPORT_MAX_RECORDS is not configured. */
export const DEFAULT_BULK_EXPORT_MAX_RECORDS = 500;

/** Who may export in bulk: whoever may read every record of the kind (admin always). */
export const BULK_EXPORT_READERS: Record<BulkExportKind, readonly Role[]> = {
  capas: ['qa_manager'],
  samples: ['lab_technician', 'lab_director'],
};

export type BulkExportRequest =
  | { kind: 'capas'; year: number; format: BulkExportFormat }
  | { kind: 'samples'; month: string; format: BulkExportFormat };

export const bulkExportLocation = (id: string) => `/api/v1/bulk-exports/${id}`;

const periodOf = (request: BulkExportRequest) => (request.kind === 'capas' ? String(request.year) : request.month);

/**
 * Starts a bulk export: refused 403 (audited, nothing generated) to whoever may not read the records, 422 (audited,
 * naming the limit) when the selection holds more than the configured most; else recorded, audited and run.
 */
export async function startBulkExport(deps: Pick<ApiDeps, 'db' | 'temporal' | 'config'>, actor: Actor, request: BulkExportRequest) {
  const { db, temporal, config } = deps;
  const id = randomUUID();
  const period = periodOf(request);
  const asked = { kind: request.kind, period, format: request.format };
  const audited = { actorId: actor.userId, actor: actor.username, entityType: 'bulk_export', entityId: id };
  try {
    requireRole(actor, BULK_EXPORT_READERS[request.kind]);
  } catch (err) {
    if (err instanceof Problem) await appendAudit(db, { ...audited, action: 'bulk_export.refused', details: { ...asked, reason: 'forbidden' } });
    throw err;
  }
  const maxRecords = config.bulkExports?.maxRecords ?? DEFAULT_BULK_EXPORT_MAX_RECORDS;
  const total = await countSelection(db, request.kind, period);
  if (total > maxRecords) {
    await appendAudit(db, { ...audited, action: 'bulk_export.refused', details: { ...asked, reason: 'too_large', records: total, limit: maxRecords } });
    throw problems.unprocessable(
      BULK_EXPORT_TOO_LARGE,
      `the selection holds ${total} records; one bulk export holds at most ${maxRecords} (BULK_EXPORT_MAX_RECORDS): ask for a shorter period`,
      { limit: maxRecords, records: total },
    );
  }
  const workflowId = workflowIds.bulkExport(id);
  await db.transaction(async (trx) => {
    await insertBulkExport(trx, {
      id,
      workflow_id: workflowId,
      kind: request.kind,
      period,
      format: request.format,
      requested_by_id: actor.userId,
      requested_by: actor.username,
      requested_by_name: actor.printedName,
      total,
    });
    await appendAudit(trx, { ...audited, action: 'bulk_export.started', details: { ...asked, records: total, workflowId } });
  });
  const input: BulkExportInput = { exportId: id, maxRecords };
  try {
    await temporal.workflow.start<typeof bulkExportWorkflow>('bulkExportWorkflow', {
      workflowId,
      taskQueue: config.taskQueue,
      args: [input],
      workflowIdReusePolicy: 'REJECT_DUPLICATE',
    });
  } catch (err) {
    await updateBulkExport(db, id, { state: 'failed', error: 'the export could not be started; ask again', finished_at: db.fn.now() });
    throw err;
  }
  return { id, workflowId, state: 'running' as const, total, location: bulkExportLocation(id) };
}

/** Only the person who asked for an export sees it, and only while they may still read its records. */
async function ownExport(db: ApiDeps['db'], actor: Actor, id: string): Promise<BulkExportRow> {
  const row = await findBulkExport(db, id);
  if (!row) throw problems.notFound(`bulk export ${id}`);
  if (row.requested_by_id !== actor.userId) throw problems.forbidden('a bulk export is answered only to the person who asked for it');
  requireRole(actor, BULK_EXPORT_READERS[row.kind]);
  return row;
}

/** The retention as the export's own dates show it (the setting may have changed since). */
const retentionText = (row: BulkExportRow) => {
  const hours = Math.round((new Date(row.expired_at!).getTime() - new Date(row.finished_at!).getTime()) / 3_600_000);
  return hours >= 48 ? `${Math.floor(hours / 24)} days` : `${hours} hours`;
};

export function bulkExportView(row: BulkExportRow, retentionMs = DEFAULT_BULK_EXPORT_RETENTION_MS) {
  return {
    id: row.id,
    workflowId: row.workflow_id,
    kind: row.kind,
    period: row.period,
    format: row.format,
    state: row.state,
    total: row.total,
    done: row.done,
    requestedBy: row.requested_by,
    requestedAt: new Date(row.requested_at).toISOString(),
    finishedAt: row.finished_at ? new Date(row.finished_at).toISOString() : null,
    error: row.error,
    bytes: row.bytes,
    sha256: row.sha256,
    download: row.state === 'completed' ? `${bulkExportLocation(row.id)}/file` : null,
    expiresAt: row.state === 'completed' && row.finished_at ? new Date(new Date(row.finished_at).getTime() + retentionMs).toISOString() : null,
    expiredAt: row.expired_at ? new Date(row.expired_at).toISOString() : null,
  };
}

export async function bulkExportStatus(deps: Pick<ApiDeps, 'db' | 'config'>, actor: Actor, id: string) {
  return bulkExportView(await ownExport(deps.db, actor, id), deps.config.bulkExports?.retentionMs);
}

/**
 * The export's file, answered to the person who asked for it: every download is audited; a sample bundle's is a PHI
 * access event naming its samples, and a refused one a denied event. 409 while it is still being written.
 */
export async function downloadBulkExport(deps: Pick<ApiDeps, 'db' | 'log'>, actor: Actor, ctx: Context, id: string) {
  const { db } = deps;
  const audited = { actorId: actor.userId, actor: actor.username, entityType: 'bulk_export', entityId: id };
  const found = await findBulkExport(db, id);
  if (!found) throw problems.notFound(`bulk export ${id}`);
  let row: BulkExportRow;
  try {
    row = await ownExport(db, actor, id);
  } catch (err) {
    if (err instanceof Problem && err.status === 403) {
      await appendAudit(db, { ...audited, action: 'bulk_export.download_refused', details: { kind: found.kind, period: found.period } });
      if (found.kind === 'samples')
        await recordPhiAccess(db, {
          userId: actor.userId,
          username: actor.username,
          kind: 'sample_export',
          patientIds: [],
          recordIds: found.record_ids ?? [],
          outcome: 'denied',
          ...phiVia(ctx),
        });
    }
    throw err;
  }
  const expired = async (gone: BulkExportRow) => {
    await appendAudit(db, { ...audited, action: 'bulk_export.download_expired', details: { kind: gone.kind, period: gone.period } });
    return problems.gone(
      'bulk-export-expired',
      `the file was deleted at ${new Date(gone.expired_at!).toISOString()}, ${retentionText(gone)} after it was written (BULK_EXPORT_RETENTION); ask for a new export`,
    );
  };
  if (row.state === 'expired') throw await expired(row);
  if (row.state !== 'completed') {
    throw problems.conflict(
      'bulk-export-not-ready',
      row.state === 'failed' ? `the export failed: ${row.error ?? 'no reason recorded'}` : `the export is still being written (${row.done} of ${row.total})`,
    );
  }
  const file = await bulkExportFile(db, id);
  if (!file) {
    // The expiry sweep deleted the file between the two reads.
    const now = await findBulkExport(db, id);
    if (now?.state === 'expired') throw await expired(now);
    throw problems.notFound(`the file of bulk export ${id}`);
  }
  if (row.kind === 'samples')
    await logPhiRead(db, actor, phiVia(ctx), { kind: 'sample_export', patientIds: [], recordIds: row.record_ids ?? [] }, deps.log);
  await appendAudit(db, {
    ...audited,
    action: 'bulk_export.downloaded',
    details: { kind: row.kind, period: row.period, format: row.format, records: row.total, sha256: row.sha256 },
  });
  ctx.set('Content-Disposition', `attachment; filename="${(row.file_name ?? `bulk-export.${row.format}`).replace(/[^A-Za-z0-9._-]/g, '_')}"`);
  ctx.set('Cache-Control', 'no-store');
  ctx.type = row.media_type ?? 'application/octet-stream';
  ctx.body = file;
}
