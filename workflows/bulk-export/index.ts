import { ActivityFailure, ApplicationFailure, proxyActivities, upsertSearchAttributes, type ActivityOptions } from '@temporalio/workflow';
import type { Activities } from '../../activities';
import type { BulkExportInput, BulkExportResult } from '../../common/bulk-export';
import { EntityId, EntityType, Stage } from '../../common/search-attributes';
import { db } from '../lib';

/** Copying a few hundred records with their whole trails takes minutes; the attempt heartbeats per record. */
const copying: ActivityOptions = {
  startToCloseTimeout: '30m',
  heartbeatTimeout: '2m',
  retry: { initialInterval: '5s', maximumAttempts: 3, nonRetryableErrorTypes: ['not-found'] },
};
const files = proxyActivities<Activities>(copying);

/**
 * One bulk export (`bulk-export:<id>`): fix the selection, copy every record into one file, store it. The run
 * carries the export's ID only; the records, the progress and the file are in PostgreSQL (bulk_exports).
 */
export async function bulkExportWorkflow(input: BulkExportInput): Promise<BulkExportResult> {
  const publish = (stage: string) =>
    upsertSearchAttributes([
      { key: EntityType, value: 'bulk-export' },
      { key: EntityId, value: input.exportId },
      { key: Stage, value: stage },
    ]);
  publish('selecting');
  try {
    const { total } = await db.selectBulkExportRecords(input);
    publish('copying');
    const written = await files.writeBulkExport(input.exportId);
    publish('completed');
    return { state: 'completed', total, bytes: written.bytes };
  } catch (err) {
    const cause = err instanceof ActivityFailure ? err.cause : err;
    const reason = cause instanceof ApplicationFailure && cause.nonRetryable ? cause.message : 'the file could not be written; ask again';
    await db.failBulkExport(input.exportId, reason);
    publish('failed');
    return { state: 'failed', total: 0, bytes: 0 };
  }
}
