import { log } from '@temporalio/activity';
import { sealAuditChain, verifyAuditChain, type AuditVerdict } from '../db/audit';
import { resolveRecipients } from '../db/recipients';
import type { ActivityDeps } from './deps';
import { writeNotice } from './notice-writer';
import { activityKey } from './keys';

/** What an alert says about a verdict that is not ok: the first bad link, or why the anchor was refused. */
export function auditVerdictProblem(verdict: AuditVerdict): string {
  const parts: string[] = [];
  if (verdict.firstBroken) parts.push(`the chain breaks at event ${verdict.firstBroken.seq}: ${verdict.firstBroken.reason}`);
  const refused = verdict.keyed?.checkpointRefused;
  if (refused) parts.push(`the newest checkpoint ${refused.file} is refused: ${refused.reason}`);
  return parts.join('; ');
}

export function auditActivities({ db, mailDomain, auditChain }: ActivityDeps) {
  return {
    /**
     * Verifies the whole trail against the newest checkpoint; with the chain key it then seals the new events and
     * anchors the head in a signed checkpoint next to the backups. When the chain does not hold, nothing is sealed
     * and every admin and QA manager is told; returns the outbox to deliver.
     */
    async verifyAuditTrail(): Promise<AuditVerdict & { outboxIds: string[]; noticeIds: string[] }> {
      let verdict: AuditVerdict;
      if (auditChain) {
        const sealed = await sealAuditChain(db, auditChain, new Date());
        verdict = sealed.verdict;
        if (sealed.checkpointFile)
          log.info('audit chain sealed and anchored', { newlySealed: sealed.newlySealed, checkpoint: sealed.checkpointFile });
      } else {
        log.warn('audit chain key not configured (AUDIT_CHAIN_KEY_FILE): only the unkeyed hashes are checked');
        verdict = await verifyAuditChain(db);
      }
      if (verdict.ok) return { ...verdict, outboxIds: [], noticeIds: [] };
      const problem = auditVerdictProblem(verdict);
      log.error('audit trail verification failed', { seq: verdict.firstBroken?.seq, problem });
      // Urgent: SMS and Slack at once beside in-app and email, and up the escalation chain until acknowledged.
      const notice = await db.transaction(async (trx) =>
        writeNotice(
          trx,
          {
            idempotencyKey: activityKey(),
            kind: 'audit.chain_broken',
            priority: 'urgent',
            subjectType: 'audit_trail',
            subjectId: 'audit_events',
            facts: { problem, seq: verdict.firstBroken?.seq === undefined ? null : String(verdict.firstBroken.seq) },
            recipients: await resolveRecipients(trx, [
              { kind: 'role', role: 'admin' },
              { kind: 'role', role: 'qa_manager' },
            ]),
          },
          mailDomain,
        ),
      );
      const { outboxIds } = notice;
      return { ...verdict, outboxIds, noticeIds: notice.needsRun ? [notice.noticeId] : [] };
    },
  };
}
