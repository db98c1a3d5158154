import { proxyActivities, workflowInfo } from '@temporalio/workflow';
import type { Activities } from '../activities';
import type { CleanupCounts, CleanupInput, DigestInput, OverdueRemindersInput } from '../common/scheduled-work';

export { backupWorkflow, restoreDrillWorkflow } from './backup';

const acts = proxyActivities<Activities>({ startToCloseTimeout: '15m', retry: { initialInterval: '10s', maximumAttempts: 5 } });
const mail = proxyActivities<Activities>({ startToCloseTimeout: '45s', retry: { initialInterval: '5s', maximumInterval: '15m' } });
const canary = proxyActivities<Activities>({ startToCloseTimeout: '30s', retry: { initialInterval: '2s', maximumAttempts: 3 } });

/** Every few hours: one reminder per overdue task and period, escalation once per task. */
export async function overdueRemindersWorkflow(input: OverdueRemindersInput): Promise<{ reminded: number; escalated: number }> {
  const { outboxIds, ...counts } = await acts.sendOverdueReminders(input);
  if (outboxIds.length) await mail.deliverEmails(outboxIds);
  return counts;
}

/** Hourly: users whose local time reached the digest hour get today's digest, once. */
export async function dailyDigestWorkflow(input: DigestInput): Promise<{ sent: number }> {
  const { outboxIds, sent } = await acts.sendDailyDigests(input);
  if (outboxIds.length) await mail.deliverEmails(outboxIds);
  return { sent };
}

/** Weekly: expired keys, old read notifications, sent outbox rows and files; counts in the audit trail. */
export async function cleanupWorkflow(input: CleanupInput): Promise<CleanupCounts> {
  return acts.runCleanup(input);
}

/** A tiny run through the whole path (Temporal → worker → Postgres); /readyz reports the last one. */
export async function healthCanaryWorkflow(): Promise<{ completedAt: string }> {
  const info = workflowInfo();
  return canary.canaryTouch({ workflowId: info.workflowId, startedAt: new Date(info.startTime).toISOString() });
}
