import { proxyActivities } from '@temporalio/workflow';
import type { Activities } from '../activities';

const acts = proxyActivities<Activities>({
  startToCloseTimeout: '30m',
  retry: { initialInterval: '10s', maximumAttempts: 5 },
});
const mail = proxyActivities<Activities>({ startToCloseTimeout: '45s', retry: { initialInterval: '5s', maximumInterval: '15m' } });

/** Scheduled check of the audit trail's hash chain; admins are told when a link is broken. */
export async function auditVerifyWorkflow(): Promise<{ ok: boolean; events: number; firstBrokenSeq: number | null }> {
  const verdict = await acts.verifyAuditTrail();
  if (verdict.outboxIds.length) await mail.deliverEmails(verdict.outboxIds);
  return { ok: verdict.ok, events: verdict.events, firstBrokenSeq: verdict.firstBroken?.seq ?? null };
}
