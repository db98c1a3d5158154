import { proxyActivities, workflowInfo, type ActivityOptions } from '@temporalio/workflow';
import type { Activities } from '../activities';
import type { CleanupCounts, CleanupInput, DigestInput, OverdueRemindersInput } from '../common/scheduled-work';
import { mail, scheduledJob, startNoticeRuns } from './lib';

export { backupWorkflow, restoreDrillWorkflow } from './backup';

const db = proxyActivities<Activities>(scheduledJob);

/** The canary's touch is one tiny write: a slow or failing one is what it exists to show, so it gives up soon. */
const canaryTouch: ActivityOptions = { startToCloseTimeout: '30s', retry: { initialInterval: '2s', maximumAttempts: 3 } };
const probeDb = proxyActivities<Activities>(canaryTouch);

/** Every few hours: one reminder per overdue task and period, escalation once per task. */
export async function overdueRemindersWorkflow(input: OverdueRemindersInput): Promise<{ reminded: number; escalated: number }> {
  const { outboxIds, noticeIds, ...counts } = await db.sendOverdueReminders(input);
  // Histories recorded before notices have no noticeIds: nothing is started for them, so they replay as they ran.
  await startNoticeRuns(noticeIds);
  if (outboxIds.length) await mail.deliverEmails(outboxIds);
  return counts;
}

/** Hourly: users whose local time reached the digest hour get today's digest, once. */
export async function dailyDigestWorkflow(input: DigestInput): Promise<{ sent: number }> {
  const { outboxIds, sent } = await db.sendDailyDigests(input);
  if (outboxIds.length) await mail.deliverEmails(outboxIds);
  return { sent };
}

/** Weekly: expired keys, old read notifications, sent outbox rows and files; counts in the audit trail. */
export async function cleanupWorkflow(input: CleanupInput): Promise<CleanupCounts> {
  return db.runCleanup(input);
}

/** A tiny run through the whole path (Temporal → worker → Postgres); /readyz reports the last one. */
export async function healthCanaryWorkflow(): Promise<{ completedAt: string }> {
  const info = workflowInfo();
  return probeDb.canaryTouch({ workflowId: info.workflowId, startedAt: new Date(info.startTime).toISOString() });
}
