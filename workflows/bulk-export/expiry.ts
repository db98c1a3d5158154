import { proxyActivities } from '@temporalio/workflow';
import type { Activities } from '../../activities';
import type { BulkExportExpiryInput, BulkExportExpiryResult } from '../../common/bulk-export';
import { scheduledJob } from '../lib';

const db = proxyActivities<Activities>(scheduledJob);

/**
 * Hourly (the `bulk-export-expiry` Schedule): every bulk export whose file was written longer ago than the retention
 * loses its file and is marked expired, each one audited. A sweep rather than a timer in each export's run: the
 * retention applies to every export at once (exports written before it was set, or before it changed, too), and
 * no run stays open for days per export.
 */
export async function bulkExportExpiryWorkflow(input: BulkExportExpiryInput): Promise<BulkExportExpiryResult> {
  return db.expireBulkExports(input);
}
