import { log } from '@temporalio/activity';
import { verifyAuditChain, type AuditVerdict } from '../db/audit';
import { queueNotifications } from '../db/notifications';
import { resolveRecipients } from '../db/recipients';
import type { ActivityDeps } from './deps';
import { activityKey } from './keys';

export function auditActivities({ db, mailDomain }: ActivityDeps) {
  return {
    /** Verifies the whole trail; when a link is broken, tells every admin and returns the outbox to deliver. */
    async verifyAuditTrail(): Promise<AuditVerdict & { outboxIds: string[] }> {
      const verdict = await verifyAuditChain(db);
      if (verdict.ok) return { ...verdict, outboxIds: [] };
      log.error('audit trail verification failed', { seq: verdict.firstBroken?.seq, reason: verdict.firstBroken?.reason });
      const outboxIds = await db.transaction(async (trx) =>
        queueNotifications(
          trx,
          await resolveRecipients(trx, [{ kind: 'role', role: 'admin' }]),
          {
            idempotencyKey: activityKey(),
            kind: 'audit.chain_broken',
            title: 'Audit trail verification failed',
            body: `The audit trail's hash chain breaks at event ${verdict.firstBroken?.seq}: ${verdict.firstBroken?.reason}.`,
          },
          mailDomain,
        ),
      );
      return { ...verdict, outboxIds };
    },
  };
}
