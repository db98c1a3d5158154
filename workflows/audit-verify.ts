import { proxyActivities, type ActivityOptions } from '@temporalio/workflow';
import type { Activities } from '../activities';
import { mail, startNoticeRuns } from './lib';

/** Walking the whole chain takes minutes on a large trail; a few tries, then the failure shows in the run. */
const chainWalk: ActivityOptions = { startToCloseTimeout: '30m', retry: { initialInterval: '10s', maximumAttempts: 5 } };
const db = proxyActivities<Activities>(chainWalk);

/** Scheduled check of the audit trail's hash chain; admins are told when a link is broken. */
export async function auditVerifyWorkflow(): Promise<{ ok: boolean; events: number; firstBrokenSeq: number | null }> {
  const verdict = await db.verifyAuditTrail();
  // Histories recorded before notices have no noticeIds: nothing is started for them, so they replay as they ran.
  await startNoticeRuns(verdict.noticeIds);
  if (verdict.outboxIds.length) await mail.deliverEmails(verdict.outboxIds);
  return { ok: verdict.ok, events: verdict.events, firstBrokenSeq: verdict.firstBroken?.seq ?? null };
}
