import { createHash } from 'node:crypto';
import { Context as ActivityContext, ApplicationFailure } from '@temporalio/activity';
import { stringify } from 'csv-stringify/sync';
import {
  BULK_EXPORT_TOO_LARGE,
  type BulkExportExpiryInput,
  type BulkExportExpiryResult,
  type BulkExportFormat,
  type BulkExportInput,
  type BulkExportKind,
} from '../common/bulk-export';
import { durationMs } from '../common/durations';
import { appendAudit } from '../db/audit';
import { findBulkExport, lockBulkExport, selectionKeys, updateBulkExport, type BulkExportRow } from '../db/bulk-exports';
import { findSample } from '../db/sample-intake';
import type { ExportedRecord } from '../api/exports/exported-record';
import { capaProjectionRecord, sampleRecord, type Generator } from '../api/exports/projection-records';
import { BUNDLE_CSV_COLUMNS, csvBundleRows } from '../api/exports/render-csv';
import { renderPdfBundle } from '../api/exports/render-pdf';
import type { ActivityDeps } from './deps';

const MEDIA: Record<BulkExportFormat, string> = {
  pdf: 'application/pdf',
  csv: 'text/csv; charset=utf-8',
  json: 'application/json; charset=utf-8',
};

export const selectionText = (kind: BulkExportKind, period: string) =>
  kind === 'capas' ? `every CAPA initiated in ${period} (UTC)` : `every sample registered in ${period} (UTC), aliquots within their parent`;

/**
 * Bulk exports (docs/exports.md): the selection fixed once, then every record copied into one file, read from
 * PostgreSQL alone (the CAPA projection, the samples and their custody, signatures and trails): no run is asked.
 */
export function bulkExportActivities({ db }: ActivityDeps) {
  async function loadRow(id: string): Promise<BulkExportRow> {
    const row = await findBulkExport(db, id);
    if (!row) throw ApplicationFailure.nonRetryable(`bulk export ${id} does not exist`, 'not-found');
    return row;
  }

  async function recordOf(kind: BulkExportKind, key: string, generator: Generator): Promise<ExportedRecord> {
    if (kind === 'capas') return capaProjectionRecord({ db }, generator, key);
    const sample = await findSample(db, key);
    if (!sample) throw new Error(`sample ${key} is not in the database`);
    return sampleRecord({ db }, generator, sample);
  }

  return {
    /**
     * Fixes the records the export holds (records added later are not in it). More than the limit the API checked
     * (records registered since) fails the export, naming the limit; a retry finds the selection already fixed.
     */
    async selectBulkExportRecords({ exportId, maxRecords }: BulkExportInput): Promise<{ total: number }> {
      const row = await loadRow(exportId);
      if (row.record_ids) return { total: row.record_ids.length };
      const keys = await selectionKeys(db, row.kind, row.period, maxRecords + 1);
      if (keys.length > maxRecords) {
        throw ApplicationFailure.nonRetryable(
          `the selection holds more than ${maxRecords} records, the most one bulk export may hold (BULK_EXPORT_MAX_RECORDS)`,
          BULK_EXPORT_TOO_LARGE,
        );
      }
      await updateBulkExport(db, exportId, { record_ids: keys, total: keys.length, done: 0 });
      return { total: keys.length };
    },

    /**
     * Copies every selected record into one file and stores it. Progress (`done`) is written as each record is
     * copied; an attempt after a crash starts the file again (a file is written whole or not at all).
     */
    async writeBulkExport(exportId: string): Promise<{ total: number; bytes: number }> {
      const row = await loadRow(exportId);
      const keys = row.record_ids ?? [];
      if (row.state === 'completed') return { total: keys.length, bytes: row.bytes ?? 0 };
      const generator = { username: row.requested_by, printedName: row.requested_by_name };
      const generatedAt = new Date().toISOString();
      let done = 0;
      async function* records(): AsyncGenerator<[string, ExportedRecord]> {
        for (const key of keys) {
          const record = await recordOf(row.kind, key, generator);
          yield [key, record];
          done += 1;
          ActivityContext.current().heartbeat({ done });
          await updateBulkExport(db, exportId, { done });
        }
      }
      let file: Buffer;
      const selection = selectionText(row.kind, row.period);
      if (row.format === 'pdf') {
        const only = async function* () {
          for await (const [, record] of records()) yield record;
        };
        file = await renderPdfBundle({ title: `Bulk export: ${selection}`, selection, generatedAt, generatedBy: generator }, only(), keys);
      } else if (row.format === 'csv') {
        const parts: string[] = [];
        for await (const [key, record] of records()) parts.push(csvBundleRows(key, record, parts.length === 0));
        file = Buffer.from(parts.length ? parts.join('') : stringify([], { header: true, columns: [...BUNDLE_CSV_COLUMNS] }));
      } else {
        const all: ExportedRecord[] = [];
        for await (const [, record] of records()) all.push(record);
        file = Buffer.from(
          JSON.stringify({ kind: 'bulk_export', exportId, selection, generatedAt, generatedBy: generator, total: all.length, records: all }),
        );
      }
      const sha256 = createHash('sha256').update(file).digest('hex');
      const fileName = `bulk-export-${row.kind}-${row.period}.${row.format}`;
      await db.transaction(async (trx) => {
        const locked = await lockBulkExport(trx, exportId);
        if (!locked || locked.state !== 'running') return;
        await updateBulkExport(trx, exportId, {
          state: 'completed',
          done: keys.length,
          file,
          file_name: fileName,
          media_type: MEDIA[row.format],
          bytes: file.length,
          sha256,
          finished_at: trx.fn.now(),
        });
        const entityType = row.kind === 'capas' ? 'capa' : 'sample';
        // Each record's own trail says it was copied, as a single export does.
        for (const key of keys) {
          await appendAudit(trx, {
            actor: row.requested_by,
            actorId: row.requested_by_id,
            action: 'record.exported',
            entityType,
            entityId: key,
            details: { kind: entityType, format: row.format, bulkExportId: exportId },
          });
        }
        await appendAudit(trx, {
          actor: 'system:bulk-export',
          action: 'bulk_export.completed',
          entityType: 'bulk_export',
          entityId: exportId,
          details: { kind: row.kind, period: row.period, format: row.format, records: keys.length, bytes: file.length, sha256 },
        });
      });
      return { total: keys.length, bytes: file.length };
    },

    /**
     * Deletes the file of every export written longer ago than the retention and marks it expired, one
     * transaction and audit event each (what it held, its size and hash stay on the row and in the trail). A rerun
     * finds nothing left to do.
     */
    async expireBulkExports(input: BulkExportExpiryInput): Promise<BulkExportExpiryResult> {
      // PostgreSQL's clock, the one that wrote finished_at, not the worker's.
      const retentionSeconds = durationMs(input.retention) / 1000;
      let expired = 0;
      for (;;) {
        const due: string[] = await db('bulk_exports')
          .where({ state: 'completed' })
          .andWhereRaw('finished_at < now() - make_interval(secs => ?)', [retentionSeconds])
          .orderBy('finished_at')
          .limit(100)
          .pluck('id');
        if (!due.length) return { expired };
        for (const id of due) {
          await db.transaction(async (trx) => {
            const locked = await lockBulkExport(trx, id);
            if (!locked || locked.state !== 'completed') return;
            await updateBulkExport(trx, id, { state: 'expired', file: null, expired_at: trx.fn.now() });
            await appendAudit(trx, {
              actor: 'system:bulk-export',
              action: 'bulk_export.expired',
              entityType: 'bulk_export',
              entityId: id,
              details: {
                kind: locked.kind,
                period: locked.period,
                format: locked.format,
                bytes: locked.bytes,
                sha256: locked.sha256,
                writtenAt: locked.finished_at ? new Date(locked.finished_at).toISOString() : null,
                retention: input.retention,
              },
            });
            expired += 1;
          });
          ActivityContext.current().heartbeat({ expired });
        }
      }
    },

    /** The export failed: the person who asked sees why (the failure's message names no record's content). */
    async failBulkExport(exportId: string, reason: string): Promise<void> {
      await db.transaction(async (trx) => {
        const locked = await lockBulkExport(trx, exportId);
        if (!locked || locked.state !== 'running') return;
        await updateBulkExport(trx, exportId, { state: 'failed', error: reason.slice(0, 500), finished_at: trx.fn.now() });
        await appendAudit(trx, {
          actor: 'system:bulk-export',
          action: 'bulk_export.failed',
          entityType: 'bulk_export',
          entityId: exportId,
          details: { kind: locked.kind, period: locked.period, format: locked.format, reason: reason.slice(0, 500) },
        });
      });
    },
  };
}
