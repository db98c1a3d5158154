import { ApplicationFailure, CancellationScope, proxyActivities, upsertSearchAttributes, uuid4, workflowInfo } from '@temporalio/workflow';
import type { Activities } from '../activities';
import type { BackupInput, BackupResult, RestoreDrillInput, RestoreDrillResult } from '../common/scheduled-work';
import { EntityId, EntityType, Stage } from '../common/search-attributes';

const mail = proxyActivities<Activities>({ startToCloseTimeout: '45s', retry: { initialInterval: '5s', maximumInterval: '15m' } });
const steps = proxyActivities<Activities>({
  startToCloseTimeout: '10m',
  retry: { initialInterval: '5s', maximumAttempts: 5 },
});

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
  // Long steps heartbeat, so a dead worker is noticed within the heartbeat timeout and the step runs again.
  const long = proxyActivities<Activities>({
    startToCloseTimeout: '12h',
    heartbeatTimeout: settings.heartbeatTimeout,
    retry: { initialInterval: '10s', backoffCoefficient: 3, maximumAttempts: 3 },
  });
  stage('preflight', backupId);
  try {
    await steps.backupBegin({
      backupId,
      workflowId: info.workflowId,
      trigger: input.trigger ?? 'scheduled',
      requestedBy: input.requestedBy ?? null,
      takenAt: input.takenAt ?? new Date(info.startTime).toISOString(),
      settings,
    });
    await steps.backupPreflight({ backupId, settings });
    stage('dumping', backupId);
    await long.backupDump({ backupId, settings });
    stage('verifying', backupId);
    await long.backupVerify({ backupId, settings });
    stage('shipping', backupId);
    await long.backupShip({ backupId, settings });
    const good = await steps.backupMarkVerified({ backupId });
    stage('retention', backupId);
    const retention = await steps.backupApplyRetention({ settings, newestBackupId: backupId });
    stage('verified', backupId);
    return { backupId, state: 'verified', dumpBytes: good.dumpBytes, sha256: good.sha256, retention };
  } catch (err) {
    const reason = err instanceof Error ? (err.cause instanceof Error ? err.cause.message : err.message) : String(err);
    await CancellationScope.nonCancellable(async () => {
      const { outboxIds } = await steps.backupMarkFailed({ backupId, settings, reason });
      if (outboxIds.length) await mail.deliverEmails(outboxIds);
    });
    stage('failed', backupId);
    throw ApplicationFailure.nonRetryable(`backup ${backupId} failed: ${reason}`, 'BackupFailed');
  }
}

/** Weekly proof that backups restore: RTO evidence and smoke queries, recorded; IT operators told on failure. */
export async function restoreDrillWorkflow(input: RestoreDrillInput): Promise<RestoreDrillResult> {
  const drillId = uuid4();
  const long = proxyActivities<Activities>({
    startToCloseTimeout: '12h',
    heartbeatTimeout: input.settings.heartbeatTimeout,
    retry: { initialInterval: '30s', maximumAttempts: 3 },
  });
  const { outboxIds, ...result } = await long.restoreDrill({
    drillId,
    workflowId: workflowInfo().workflowId,
    settings: input.settings,
    backupId: input.backupId,
  });
  if (outboxIds.length) await mail.deliverEmails(outboxIds);
  if (!result.ok) throw ApplicationFailure.nonRetryable(`restore drill failed: ${result.failure}`, 'RestoreDrillFailed', result);
  return result;
}
