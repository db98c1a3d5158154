import { log } from '@temporalio/activity';
import { sealAuditChain, verifyAuditChain, type AuditVerdict } from '../db/audit';
import { queueNotifications } from '../db/notifications';
import { resolveRecipients } from '../db/recipients';
import type { ActivityDeps } from './deps';
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
    async verifyAuditTrail(): Promise<AuditVerdict & { outboxIds: string[] }> {
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
      if (verdict.ok) return { ...verdict, outboxIds: [] };
      const problem = auditVerdictProblem(verdict);
      log.error('audit trail verification failed', { seq: verdict.firstBroken?.seq, problem });
      const outboxIds = await db.transaction(async (trx) =>
        queueNotifications(
          trx,
          await resolveRecipients(trx, [
            { kind: 'role', role: 'admin' },
            { kind: 'role', role: 'qa_manager' },
          ]),
          {
            idempotencyKey: activityKey(),
            kind: 'audit.chain_broken',
            title: 'Audit trail verification failed',
            body: `The audit trail cannot be trusted: ${problem}. Nothing was sealed or anchored until this is investigated.`,
          },
          mailDomain,
        ),
      );
      return { ...verdict, outboxIds };
    },
  };
}
