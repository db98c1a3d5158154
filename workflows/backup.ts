import {
  ApplicationFailure,
  CancellationScope,
  proxyActivities,
  upsertSearchAttributes,
  uuid4,
  workflowInfo,
  type ActivityOptions,
} from '@temporalio/workflow';
import type { Activities } from '../activities';
import type { BackupInput, BackupResult, RestoreDrillInput, RestoreDrillResult } from '../common/scheduled-work';
import { EntityId, EntityType, Stage } from '../common/search-attributes';
import { longRunning, mail } from './lib';

/** A backup's bookkeeping and checks: minutes at most (retention walks the backup directory), a few tries. */
const backupStep: ActivityOptions = { startToCloseTimeout: '10m', retry: { initialInterval: '5s', maximumAttempts: 5 } };
const db = proxyActivities<Activities>(backupStep);

/** Dump, verify and ship heartbeat, so a dead worker is noticed within the heartbeat timeout and the step runs again. */
const fileWork = (heartbeatTimeout: ActivityOptions['heartbeatTimeout'], retry: ActivityOptions['retry']) =>
  proxyActivities<Activities>(longRunning(heartbeatTimeout, { retry }));

function stage(value: string, backupId: string) {
  upsertSearchAttributes([
    { key: EntityType, value: 'backup' },
    { key: EntityId, value: backupId },
    { key: Stage, value },
  ]);
}

/**
 * One backup: preflight, dump, verify, encrypt and ship, mark verified, then retention. Any failure marks the
 * backup failed (it never counts toward retention), removes its files, tells IT operators, and fails the run.
 */
export async function backupWorkflow(input: BackupInput): Promise<BackupResult> {
  const { settings } = input;
  const backupId = uuid4();
  const info = workflowInfo();
  const files = fileWork(settings.heartbeatTimeout, { initialInterval: '10s', backoffCoefficient: 3, maximumAttempts: 3 });
  stage('preflight', backupId);
  try {
    await db.backupBegin({
      backupId,
      workflowId: info.workflowId,
      trigger: input.trigger ?? 'scheduled',
      requestedBy: input.requestedBy ?? null,
      takenAt: input.takenAt ?? new Date(info.startTime).toISOString(),
      settings,
    });
    await db.backupPreflight({ backupId, settings });
    stage('dumping', backupId);
    await files.backupDump({ backupId, settings });
    stage('verifying', backupId);
    await files.backupVerify({ backupId, settings });
    stage('shipping', backupId);
    await files.backupShip({ backupId, settings });
    const good = await db.backupMarkVerified({ backupId });
    stage('retention', backupId);
    const retention = await db.backupApplyRetention({ settings, newestBackupId: backupId });
    stage('verified', backupId);
    return { backupId, state: 'verified', dumpBytes: good.dumpBytes, sha256: good.sha256, retention };
  } catch (err) {
    const reason = err instanceof Error ? (err.cause instanceof Error ? err.cause.message : err.message) : String(err);
    await CancellationScope.nonCancellable(async () => {
      const { outboxIds } = await db.backupMarkFailed({ backupId, settings, reason });
      if (outboxIds.length) await mail.deliverEmails(outboxIds);
    });
    stage('failed', backupId);
    throw ApplicationFailure.nonRetryable(`backup ${backupId} failed: ${reason}`, 'BackupFailed');
  }
}

/** Weekly proof that backups restore: RTO evidence and smoke queries, recorded; IT operators told on failure. */
export async function restoreDrillWorkflow(input: RestoreDrillInput): Promise<RestoreDrillResult> {
  const drillId = uuid4();
  const files = fileWork(input.settings.heartbeatTimeout, { initialInterval: '30s', maximumAttempts: 3 });
  const { outboxIds, ...result } = await files.restoreDrill({
    drillId,
    workflowId: workflowInfo().workflowId,
    settings: input.settings,
    backupId: input.backupId,
  });
  if (outboxIds.length) await mail.deliverEmails(outboxIds);
  if (!result.ok) throw ApplicationFailure.nonRetryable(`restore drill failed: ${result.failure}`, 'RestoreDrillFailed', result);
  return result;
}
