import { createHash } from 'node:crypto';
import { join, resolve } from 'node:path';
import {
  ScheduleNotFoundError,
  ScheduleOverlapPolicy,
  type Client,
  type ScheduleDescription,
  type ScheduleOptions,
  type ScheduleSpec,
} from '@temporalio/client';
import { DEFAULT_BULK_EXPORT_RETENTION, type BulkExportExpiryInput } from '../common/bulk-export';
import type { Config } from '../common/config';
import { durationMs } from '../common/durations';
import { workflowIds } from '../common/ids';
import {
  DEFAULT_SCHEDULE_OWNER,
  SCHEDULE_IDS,
  SCHEDULE_OWNER_MEMO,
  type BackupSettings,
  type CleanupInput,
  type DigestInput,
  type OverdueRemindersInput,
} from '../common/scheduled-work';
import type { Logger } from '../platform/logger';
import { PayloadDecryptionError } from '../platform/payload-codec';
import { decodeMapFromPayloads } from '@temporalio/common/lib/internal-non-workflow';
import type { Duration } from '@temporalio/common';

/** One entry of the declarative list: what runs, when, and how overlaps and missed runs are handled. */
export interface ScheduleDefinition {
  scheduleId: string;
  description: string;
  spec: ScheduleSpec;
  workflowType: string;
  workflowId: string;
  args: unknown[];
  overlap: ScheduleOverlapPolicy;
  catchupWindow: Duration;
  /** Applies when the schedule is created; afterwards pausing is the operators' call and never undone here. */
  startPaused?: boolean;
}

export interface ScheduleSettings {
  taskQueue: string;
  timeZone: string;
  backup: BackupSettings;
  outboxDir: string | null;
  /** BULK_EXPORT_RETENTION; DEFAULT_BULK_EXPORT_RETENTION when absent. */
  bulkExportRetention?: string;
}

export function backupSettingsFromConfig(config: Config): BackupSettings {
  return {
    dir: resolve(config.BACKUP_DIR),
    offsiteDir: config.BACKUP_OFFSITE_DIR ? resolve(config.BACKUP_OFFSITE_DIR) : null,
    compression: config.BACKUP_COMPRESSION,
    encryptionKeyFile: config.BACKUP_ENCRYPTION_KEY_FILE ? resolve(config.BACKUP_ENCRYPTION_KEY_FILE) : null,
    sizeBandPercent: config.BACKUP_SIZE_BAND,
    retention: { daily: config.BACKUP_KEEP_DAILY, weekly: config.BACKUP_KEEP_WEEKLY, monthly: config.BACKUP_KEEP_MONTHLY },
    timeZone: config.LAB_TIMEZONE,
    pgUser: config.BACKUP_PG_USER ?? null,
    heartbeatTimeout: '60s',
  };
}

export function scheduleSettingsFromConfig(config: Config, taskQueue = config.TEMPORAL_TASK_QUEUE): ScheduleSettings {
  return {
    taskQueue,
    timeZone: config.LAB_TIMEZONE,
    backup: backupSettingsFromConfig(config),
    outboxDir: config.SMTP_URL ? null : resolve(join(config.DATA_DIR, 'outbox')),
    bulkExportRetention: config.BULK_EXPORT_RETENTION,
  };
}

/** The periodic work labflow runs, declared in one place; operators see, pause, trigger and backfill it in the Web UI. */
export function scheduleDefinitions(s: ScheduleSettings): ScheduleDefinition[] {
  const zone = s.timeZone;
  const reminders: OverdueRemindersInput = { every: '4h' };
  const digest: DigestInput = { hour: 9, labTimeZone: zone, dueSoon: '24h' };
  const cleanup: CleanupInput = {
    keepReadNotifications: '90d',
    keepSentEmails: '30d',
    keepRevokedKeys: '90d',
    outboxDir: s.outboxDir,
    keepOutboxFiles: '30d',
  };
  const expiry: BulkExportExpiryInput = { retention: s.bulkExportRetention ?? DEFAULT_BULK_EXPORT_RETENTION };
  return [
    {
      scheduleId: SCHEDULE_IDS.auditVerify,
      description: 'Verifies the keyed audit chain up to the last signed checkpoint, seals and anchors the new head, and alerts admins and QA at the first broken link',
      spec: { calendars: [{ hour: 3, minute: 15 }], timezone: 'UTC' },
      workflowType: 'auditVerifyWorkflow',
      workflowId: workflowIds.auditVerify(),
      args: [],
      overlap: ScheduleOverlapPolicy.SKIP,
      catchupWindow: '6h',
    },
    {
      scheduleId: SCHEDULE_IDS.backup,
      description: 'Nightly pg_dump of the labflow database: verified, encrypted when configured, copied off-site, GFS retention',
      spec: { calendars: [{ hour: 2, minute: 0 }], timezone: zone },
      workflowType: 'backupWorkflow',
      workflowId: 'backup:nightly',
      args: [{ settings: s.backup, trigger: 'scheduled' }],
      overlap: ScheduleOverlapPolicy.SKIP,
      catchupWindow: '6h',
    },
    {
      scheduleId: SCHEDULE_IDS.restoreDrill,
      description: 'Restores the latest verified backup into a scratch database, runs smoke queries, records the restore time',
      spec: { calendars: [{ dayOfWeek: 'SUNDAY', hour: 5, minute: 0 }], timezone: zone },
      workflowType: 'restoreDrillWorkflow',
      workflowId: 'restore-drill:weekly',
      args: [{ settings: s.backup }],
      overlap: ScheduleOverlapPolicy.SKIP,
      catchupWindow: '12h',
    },
    {
      scheduleId: SCHEDULE_IDS.overdueReminders,
      description: 'Reminds assignees of overdue tasks (once per task and 4-hour period) and escalates per process',
      spec: { intervals: [{ every: '4h' }] },
      workflowType: 'overdueRemindersWorkflow',
      workflowId: 'overdue-reminders',
      args: [reminders],
      overlap: ScheduleOverlapPolicy.SKIP,
      catchupWindow: '1h',
    },
    {
      scheduleId: SCHEDULE_IDS.dailyDigest,
      description: "Hourly: users whose local time reached 09:00 get the day's digest of open, due-soon and overdue tasks",
      spec: { calendars: [{ hour: '*', minute: 0 }], timezone: 'UTC' },
      workflowType: 'dailyDigestWorkflow',
      workflowId: 'daily-digest',
      args: [digest],
      overlap: ScheduleOverlapPolicy.SKIP,
      catchupWindow: '1h',
    },
    {
      scheduleId: SCHEDULE_IDS.cleanup,
      description: 'Weekly clean-up: revoked API keys, old read notifications, sent outbox rows and .eml files',
      spec: { calendars: [{ dayOfWeek: 'SUNDAY', hour: 4, minute: 0 }], timezone: zone },
      workflowType: 'cleanupWorkflow',
      workflowId: 'cleanup:weekly',
      args: [cleanup],
      overlap: ScheduleOverlapPolicy.SKIP,
      catchupWindow: '1d',
    },
    {
      scheduleId: SCHEDULE_IDS.healthCanary,
      description: 'Every 5 minutes a tiny run touches Postgres through Temporal and a worker; /readyz reports the last one',
      spec: { intervals: [{ every: '5m' }] },
      workflowType: 'healthCanaryWorkflow',
      workflowId: 'health-canary',
      args: [],
      overlap: ScheduleOverlapPolicy.SKIP,
      catchupWindow: '1m',
    },
    {
      scheduleId: SCHEDULE_IDS.bulkExportExpiry,
      description: 'Hourly: bulk export files older than BULK_EXPORT_RETENTION are deleted and their exports marked expired (audited)',
      spec: { intervals: [{ every: '1h' }] },
      workflowType: 'bulkExportExpiryWorkflow',
      workflowId: 'bulk-export-expiry',
      args: [expiry],
      overlap: ScheduleOverlapPolicy.SKIP,
      catchupWindow: '1h',
    },
    {
      scheduleId: 'erp-sync',
      description: 'Every 6 hours: incremental ERP sync of suppliers, items, orders, receipts, deletions (skipped without ERP_URL)',
      spec: { intervals: [{ every: '6h' }] },
      workflowType: 'erpSyncWorkflow',
      workflowId: workflowIds.erpSync('all'),
      args: [{ scope: 'all', mode: 'incremental', requestedBy: 'schedule' }],
      overlap: ScheduleOverlapPolicy.SKIP,
      catchupWindow: '1h',
    },
  ];
}

/** A digest of everything the definition controls, kept in the action's memo so changes are seen as drift. */
export function definitionHash(d: ScheduleDefinition, taskQueue: string): string {
  const { startPaused: _ignored, ...controlled } = d;
  return createHash('sha256')
    .update(JSON.stringify({ ...controlled, taskQueue }))
    .digest('hex')
    .slice(0, 16);
}

function toOptions(d: ScheduleDefinition, taskQueue: string, owner: string): ScheduleOptions {
  return {
    scheduleId: d.scheduleId,
    spec: d.spec,
    action: {
      type: 'startWorkflow',
      workflowType: d.workflowType,
      workflowId: d.workflowId,
      taskQueue,
      args: d.args,
      memo: { scheduleDefinition: definitionHash(d, taskQueue) },
    },
    policies: { overlap: d.overlap, catchupWindow: d.catchupWindow },
    state: { paused: d.startPaused ?? false, note: d.startPaused ? 'created paused by its definition' : undefined },
    memo: { [SCHEDULE_OWNER_MEMO]: owner, description: d.description },
  };
}

/** Which controlled parts of a live schedule differ from its definition. */
export function driftOf(current: ScheduleDescription, d: ScheduleDefinition, taskQueue: string): string[] {
  const drift: string[] = [];
  const action = current.action as { workflowType?: string; taskQueue?: string; memo?: Record<string, unknown> };
  if (action.memo?.scheduleDefinition !== definitionHash(d, taskQueue)) drift.push('definition');
  if (action.workflowType !== d.workflowType) drift.push('workflowType');
  if (action.taskQueue !== taskQueue) drift.push('taskQueue');
  if (current.policies.overlap !== d.overlap) drift.push('overlap');
  if (current.policies.catchupWindow !== (typeof d.catchupWindow === 'number' ? d.catchupWindow : durationMs(d.catchupWindow)))
    drift.push('catchupWindow');
  if ((current.spec.timezone || 'UTC') !== (d.spec.timezone || 'UTC')) drift.push('timezone');
  return drift;
}

export interface ReconcileReport {
  created: string[];
  updated: { scheduleId: string; drift: string[] }[];
  unchanged: string[];
  deleted: string[];
  /** Schedules whose payloads these keys cannot decrypt: left exactly as they are, for an operator to decide. */
  undecodable: UndecodableSchedule[];
}

export interface UndecodableSchedule {
  scheduleId: string;
  /** The codec's reason: which key ID, never what the payload holds. */
  reason: string;
}

/**
 * A schedule made with a payload key this deployment does not hold (another installation on the namespace, or a
 * key removed too early) cannot be read, so it cannot be compared, updated or safely deleted. Neither is it a
 * reason to stop: the worker's own runs do not depend on it.
 */
function undecodableReason(err: unknown): string | null {
  for (let e = err, depth = 0; e && depth < 5; e = (e as { cause?: unknown }).cause, depth++) {
    if (e instanceof PayloadDecryptionError) return e.message;
  }
  return null;
}

interface ListedSchedule {
  scheduleId: string;
  owner: unknown;
  undecodable: string | null;
}

/**
 * The namespace's schedules with their owner memo, each decoded on its own: the SDK's list() stops at the first
 * memo it cannot decode, and one foreign schedule must not hide the others.
 */
async function* listSchedules(client: Client): AsyncGenerator<ListedSchedule> {
  let nextPageToken: Uint8Array | undefined;
  do {
    const page = await client.workflowService.listSchedules({
      namespace: client.options.namespace,
      maximumPageSize: 100,
      nextPageToken,
    });
    for (const entry of page.schedules ?? []) {
      const scheduleId = entry.scheduleId ?? '';
      try {
        const memo = await decodeMapFromPayloads(client.options.loadedDataConverter, entry.memo?.fields);
        yield { scheduleId, owner: memo?.[SCHEDULE_OWNER_MEMO], undecodable: null };
      } catch (err) {
        const reason = undecodableReason(err);
        if (reason === null) throw err;
        yield { scheduleId, owner: undefined, undecodable: reason };
      }
    }
    nextPageToken = page.nextPageToken?.length ? page.nextPageToken : undefined;
  } while (nextPageToken);
}

/**
 * Makes the namespace's schedules match the list: creates the missing, updates those that drifted (keeping their
 * paused state and note), and deletes schedules this owner created that are no longer listed. Running it twice
 * changes nothing the second time. With dryRun, only reports.
 */
export async function reconcileSchedules(
  client: Client,
  definitions: ScheduleDefinition[],
  options: { taskQueue: string; owner?: string; dryRun?: boolean; log?: Logger },
): Promise<ReconcileReport> {
  const owner = options.owner ?? DEFAULT_SCHEDULE_OWNER;
  const report: ReconcileReport = { created: [], updated: [], unchanged: [], deleted: [], undecodable: [] };
  for (const d of definitions) {
    const handle = client.schedule.getHandle(d.scheduleId);
    let current: ScheduleDescription | null;
    try {
      current = await handle.describe();
    } catch (err) {
      const reason = undecodableReason(err);
      if (reason !== null) {
        report.undecodable.push({ scheduleId: d.scheduleId, reason });
        continue;
      }
      if (!(err instanceof ScheduleNotFoundError)) throw err;
      current = null;
    }
    if (!current) {
      if (!options.dryRun) await client.schedule.create(toOptions(d, options.taskQueue, owner));
      report.created.push(d.scheduleId);
      continue;
    }
    const drift = driftOf(current, d, options.taskQueue);
    if (drift.length === 0) {
      report.unchanged.push(d.scheduleId);
      continue;
    }
    report.updated.push({ scheduleId: d.scheduleId, drift });
    if (options.dryRun) continue;
    const wanted = toOptions(d, options.taskQueue, owner);
    await handle.update((previous) => ({
      ...previous,
      spec: wanted.spec,
      action: wanted.action,
      policies: { ...previous.policies, ...wanted.policies },
    }));
  }
  const listed = new Set(definitions.map((d) => d.scheduleId));
  for await (const summary of listSchedules(client)) {
    if (summary.undecodable !== null) {
      // Whose it is cannot be told without its memo; a listed one was reported above already.
      if (!listed.has(summary.scheduleId)) report.undecodable.push({ scheduleId: summary.scheduleId, reason: summary.undecodable });
      continue;
    }
    if (listed.has(summary.scheduleId) || summary.owner !== owner) continue;
    if (!options.dryRun) {
      try {
        await client.schedule.getHandle(summary.scheduleId).delete();
      } catch (err) {
        // The list is eventually consistent: a schedule deleted meanwhile (by another reconcile) is already gone.
        if (err instanceof ScheduleNotFoundError) continue;
        throw err;
      }
    }
    report.deleted.push(summary.scheduleId);
  }
  options.log?.info(
    {
      ...report,
      updated: report.updated.map((u) => `${u.scheduleId} (${u.drift.join(', ')})`),
      undecodable: report.undecodable.map((u) => u.scheduleId),
    },
    options.dryRun ? 'schedule drift' : 'schedules reconciled',
  );
  for (const u of report.undecodable) {
    options.log?.error(
      { scheduleId: u.scheduleId, reason: u.reason },
      'schedule cannot be decoded with the configured payload keys; left as it is for an operator',
    );
  }
  return report;
}

/**
 * At worker start-up: the schedules of this deployment, created or brought up to date. Those it cannot decode are
 * handed to `onUndecodable` (the worker alerts operators) and otherwise left alone.
 */
export async function ensureSchedules(
  client: Client,
  taskQueue: string,
  log: Logger,
  config: Config,
  onUndecodable?: (schedules: UndecodableSchedule[]) => Promise<void>,
): Promise<ReconcileReport> {
  const report = await reconcileSchedules(client, scheduleDefinitions(scheduleSettingsFromConfig(config, taskQueue)), { taskQueue, log });
  if (report.undecodable.length > 0 && onUndecodable) await onUndecodable(report.undecodable);
  return report;
}
