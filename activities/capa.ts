import { appendAudit } from '../db/audit';
import {
  closeCapaTasks,
  inactiveUserIds,
  linkCapaSources,
  retimeCapaTasks,
  writeCapaActions,
  writeCapaProjection,
  writeCapaRecord,
} from '../db/capa';
import { queueNotifications } from '../db/notifications';
import { resolveRecipients } from '../db/recipients';
import { recordSignature } from '../db/signatures';
import { openTask } from '../db/tasks';
import type { CapaRef, CapaStep } from './capa-step';
import { noticeText, taskTitle } from './capa-wording';
import type { ActivityDeps } from './deps';
import { activityKey } from './keys';

export type * from './capa-step';

const SYSTEM = 'system:capa';

export function capaActivities({ db, publicUrl, mailDomain }: ActivityDeps) {
  const link = (capa: CapaRef) => `${publicUrl}/api/v1/capas/${capa.number}`;

  return {
    /** Writes one step of a CAPA run in one transaction; answers the emails to deliver and the holders found inactive. */
    async recordCapaStep(step: CapaStep): Promise<{ outboxIds: string[]; inactive: string[] }> {
      return db.transaction(async (trx) => {
        const { capa } = step;
        await writeCapaProjection(trx, capa, step.rev, step.projection);
        if (step.sources) await linkCapaSources(trx, capa.number, step.sources.sources, step.sources.by);
        await writeCapaActions(trx, capa.number, step.actions ?? []);
        if (step.record) await writeCapaRecord(trx, activityKey('record'), capa.number, step.record);
        let signatureId: string | null = null;
        const sig = step.signature;
        if (sig) {
          signatureId = await recordSignature(trx, {
            idempotencyKey: `${capa.workflowId}:r${sig.round}:${sig.stage}:${sig.actor.userId}:${sig.signature.contentHash}`,
            entityType: 'capa',
            entityId: capa.number,
            workflowId: capa.workflowId,
            round: sig.round,
            stageIndex: sig.stageIndex,
            stageName: sig.stage,
            actor: sig.actor,
            signature: sig.signature,
          });
        }
        let closedTasks = 0;
        for (const c of step.closeTasks ?? []) closedTasks += await closeCapaTasks(trx, c.prefix, c.state, c.by ?? null);
        for (const r of step.retimeTasks ?? []) await retimeCapaTasks(trx, r.prefix, r.dueAt);
        for (const t of step.openTasks ?? []) {
          await openTask(trx, {
            taskKey: t.key,
            workflowId: capa.workflowId,
            entityType: 'capa',
            entityId: capa.number,
            kind: `capa.${t.subject.what}`,
            title: taskTitle(capa, t.subject),
            assignee: t.assignee,
            dueAt: t.dueAt,
          });
        }
        await appendAudit(trx, {
          actorId: step.audit.actor?.userId ?? null,
          actor: step.audit.actor?.username ?? step.audit.by ?? SYSTEM,
          action: step.audit.action,
          entityType: 'capa',
          entityId: capa.number,
          details: {
            workflowId: capa.workflowId,
            stage: step.projection.stage,
            round: step.projection.round,
            ...step.audit.details,
            ...(closedTasks ? { closedTasks } : {}),
            ...(sig
              ? {
                  signature: {
                    id: signatureId,
                    printedName: sig.actor.printedName,
                    meaning: sig.signature.meaning,
                    signedAt: sig.signature.signedAt,
                    contentHash: sig.signature.contentHash,
                  },
                }
              : {}),
          },
          idempotencyKey: activityKey(),
        });
        const outboxIds: string[] = [];
        for (const [i, notice] of (step.notify ?? []).entries()) {
          const recipients = await resolveRecipients(trx, notice.to);
          const message = { idempotencyKey: activityKey(`n${i}`), kind: notice.kind, ...noticeText(capa, notice), link: link(capa) };
          outboxIds.push(...(await queueNotifications(trx, recipients, message, mailDomain)));
        }
        return { outboxIds, inactive: await inactiveUserIds(trx, step.checkActive ?? []) };
      });
    },
  };
}

export type CapaActivities = ReturnType<typeof capaActivities>;
