import type { Knex } from 'knex';
import { capaGrantedArgs, mayAct, type CapaGrantAction } from '../common/capa-grants';
import { CAPA_CLOSURE, CAPA_VERIFICATION } from '../db/gate';
import type { Actor } from '../common/roles';
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
import type { CapaProof, CapaRef, CapaStep } from './capa-step';
import { noticeText, taskTitle } from './capa-wording';
import type { ActivityDeps } from './deps';
import { activityKey } from './keys';
import { writeNotice } from './notice-writer';
import { grantChecks, Refusal, type RecordRef } from './lib/grant-checks';
import { gateInTransaction } from './training';

export type * from './capa-step';

const SYSTEM = 'system:capa';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** What the security trail names a refused step after. */
const attempted = (proof: CapaProof) =>
  proof.kind === 'grant' ? proof.action : proof.kind === 'process_link' ? 'capa.link_sources_signal' : 'capa.user_deactivated_signal';

/**
 * Whether Postgres bears out a process's link: sample intake's CAPA request for that sample names this run, an
 * instrument's failed QC or defect chose this CAPA, or the CAPA that sends the sources was merged into this one and
 * names them itself.
 */
async function linkBorneOut(trx: Knex.Transaction, capa: CapaRef, proof: Extract<CapaProof, { kind: 'process_link' }>): Promise<boolean> {
  const sources = Array.isArray(proof.sources) ? proof.sources : [];
  if (!sources.length) return false;
  if (proof.by === 'process:sample-intake') {
    for (const src of sources) {
      if (src?.type !== 'sample') return false;
      const request = await trx('sample_capa_requests')
        .where({ source_type: 'sample', source_id: String(src.id) })
        .whereRaw(`coalesce(capa_workflow_id, details->'capa'->>'workflowId') = ?`, [capa.workflowId])
        .first('id');
      if (!request) return false;
    }
    return true;
  }
  if (proof.by === 'process:equipment') {
    for (const src of sources) {
      if (src?.type !== 'instrument') return false;
      const failure = await trx('instrument_events as e')
        .join('instruments as i', 'i.id', 'e.instrument_id')
        .where('i.code', String(src.id))
        .whereRaw(`e.details->'capa'->>'workflowId' = ?`, [capa.workflowId])
        .first('e.id');
      if (!failure) return false;
    }
    return true;
  }
  const merged = /^capa:(CAPA-\d{4}-\d+)$/.exec(String(proof.by));
  if (!merged) return false;
  const from = await trx('capas').where({ number: merged[1], merged_into: capa.number, outcome: 'merged' }).first('number');
  if (!from) return false;
  for (const src of sources) {
    const named = await trx('capa_sources')
      .where({ capa_number: merged[1], source_type: String(src?.type), source_id: String(src?.id) })
      .first('capa_number');
    if (!named) return false;
  }
  return true;
}

/** The CAPA actions behind the gate (db/gate.ts), and the activity each is. */
const GATED: Partial<Record<CapaGrantAction, string>> = { 'capa.record_effectiveness': CAPA_VERIFICATION, 'capa.close': CAPA_CLOSURE };

export function capaActivities({ db, mailer, publicUrl, mailDomain }: ActivityDeps) {
  const link = (capa: CapaRef) => `${publicUrl}/api/v1/capas/${capa.number}`;
  const checks = grantChecks({ db, mailer, mailDomain });
  const requireGate = gateInTransaction({ db });
  const refOf = (capa: CapaRef): RecordRef => ({
    workflowId: capa.workflowId,
    entityType: 'capa',
    entityId: capa.number,
    label: capa.number,
    link: link(capa),
  });

  /**
   * Checks the step's proof inside its transaction: a grant is consumed (and the user re-read) here, so it is spent
   * exactly when the step is written. Answers the person as Postgres knows them, whom the step records.
   */
  async function prove(trx: Knex.Transaction, capa: CapaRef, proof: CapaProof): Promise<Actor | undefined> {
    if (proof.kind === 'grant') {
      let args: unknown;
      try {
        args = (capaGrantedArgs[proof.action] as (a: unknown) => unknown)(proof.args);
      } catch {
        throw new Refusal('other_arguments', typeof proof.actor?.userId === 'string' ? proof.actor.userId : null);
      }
      const actor = await checks.granted(
        trx,
        capa,
        { grantId: proof.grant, action: proof.action, actor: proof.actor, args, signature: proof.signature },
        (user) => mayAct(proof.may ?? {}, user),
      );
      const gated = GATED[proof.action];
      if (gated) await requireGate(trx, actor, { activity: gated, roles: proof.may?.roles }, { entityType: 'capa', entityId: capa.number });
      return actor;
    }
    if (proof.kind === 'process_link') {
      if (!(await linkBorneOut(trx, capa, proof))) throw new Refusal('not_from_labflow', null);
      return undefined;
    }
    const userId = String(proof.userId);
    const inactive = UUID.test(userId) && (await trx('users').where({ id: userId, active: false }).first('id'));
    if (!inactive) throw new Refusal('not_from_labflow', userId.slice(0, 64));
    return undefined;
  }

  return {
    /** Writes one step of a CAPA run in one transaction; answers the emails to deliver and the holders found inactive. */
    async recordCapaStep(step: CapaStep): Promise<{ outboxIds: string[]; noticeIds?: string[]; inactive: string[] }> {
      const { proof } = step;
      const write = async (trx: Knex.Transaction) => {
        const { capa } = step;
        // A person's step records them as Postgres knows them, not as the request named them.
        const granted = proof ? await prove(trx, capa, proof) : undefined;
        const actor = granted ?? step.audit.actor;
        const changes = await writeCapaProjection(trx, capa, step.rev, step.projection);
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
            actor: granted ?? sig.actor,
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
          actorId: actor?.userId ?? null,
          actor: actor?.username ?? step.audit.by ?? SYSTEM,
          action: step.audit.action,
          entityType: 'capa',
          entityId: capa.number,
          details: {
            workflowId: capa.workflowId,
            stage: step.projection.stage,
            round: step.projection.round,
            ...step.audit.details,
            ...(closedTasks ? { closedTasks } : {}),
            ...(changes.length ? { changes } : {}),
            // Links the record to the grant it consumed, which holds when the password was checked.
            ...(proof?.kind === 'grant' ? { grant: proof.grant } : {}),
            ...(sig
              ? {
                  signature: {
                    id: signatureId,
                    printedName: (granted ?? sig.actor).printedName,
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
        const noticeIds: string[] = [];
        for (const [i, notice] of (step.notify ?? []).entries()) {
          const recipients = await resolveRecipients(trx, notice.to);
          if (notice.kind === 'capa.overdue') {
            // Urgent: a stage or action past its due date goes to its holder and the QA manager on SMS and Slack at
            // once (and in-app and email), and up the escalation chain until someone acknowledges.
            const { title, body } = noticeText(capa, notice);
            const written = await writeNotice(
              trx,
              {
                idempotencyKey: activityKey(`n${i}`),
                kind: 'capa.overdue',
                priority: 'urgent',
                subjectType: 'capa',
                subjectId: capa.number,
                facts: { capaNumber: capa.number, what: notice.what, dueAt: notice.dueAt, title, body },
                link: link(capa),
                recipients,
              },
              mailDomain,
            );
            outboxIds.push(...written.outboxIds);
            if (written.needsRun) noticeIds.push(written.noticeId);
            continue;
          }
          const message = { idempotencyKey: activityKey(`n${i}`), kind: notice.kind, ...noticeText(capa, notice), link: link(capa) };
          outboxIds.push(...(await queueNotifications(trx, recipients, message, mailDomain)));
        }
        return { outboxIds, noticeIds, inactive: await inactiveUserIds(trx, step.checkActive ?? []) };
      };
      return proof ? checks.recording(refOf(step.capa), attempted(proof), write) : db.transaction(write);
    },
  };
}

export type CapaActivities = ReturnType<typeof capaActivities>;
