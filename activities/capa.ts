import type { Knex } from 'knex';
import type { CapaSource, CapaStage, RiskLevel } from '../common/capa';
import type { AssigneeRef } from '../common/assignees';
import type { Actor } from '../common/roles';
import { assigneeKey } from '../common/assignees';
import type { SignatureInput } from '../common/signatures';
import { appendAudit } from '../db/audit';
import { queueNotifications } from '../db/notifications';
import { resolveRecipients } from '../db/recipients';
import { recordSignature } from '../db/signatures';
import { openTask, type TaskEnd } from '../db/tasks';
import type { ActivityDeps } from './deps';
import { activityKey } from './keys';

export interface CapaRef {
  workflowId: string;
  number: string;
  title: string;
}

/** The capas row as of one revision of the run's state. */
export interface CapaProjection {
  stage: CapaStage;
  outcome: string | null;
  round: number;
  risk: { severity: number; occurrence: number; score: number; level: RiskLevel } | null;
  owner: AssigneeRef | null;
  assignees: string[];
  dueAt: string | null;
  mergedInto: string | null;
  initiatedBy: string;
  closedAt: string | null;
}

export interface CapaActionRow {
  round: number;
  id: string;
  type: string;
  description: string;
  owner: AssigneeRef;
  dueAt: string;
  state: 'open' | 'done' | 'superseded';
  extensions: number;
  completedBy: string | null;
  completedAt: string | null;
  evidence: unknown;
}

/**
 * One step of a CAPA as the run decided it, written in one transaction: the projection row, sources, actions, what
 * a person recorded, a signature, inbox tasks, the audit event and the notifications it causes. The idempotency
 * keys come from the activity, so a retried step writes nothing twice.
 */
export interface CapaStep {
  capa: CapaRef;
  rev: number;
  projection: CapaProjection;
  audit: { action: string; actor?: Actor; by?: string; details: Record<string, unknown> };
  sources?: { sources: CapaSource[]; by: string };
  actions?: CapaActionRow[];
  record?: { kind: string; round: number; body: unknown; by: string };
  signature?: { round: number; stage: CapaStage; stageIndex: number; actor: Actor; signature: SignatureInput };
  closeTasks?: { prefix: string; state: TaskEnd; by?: string }[];
  /** Open tasks whose due date moved (an extension was granted). */
  retimeTasks?: { prefix: string; dueAt: string }[];
  openTasks?: { key: string; kind: string; title: string; assignee: AssigneeRef; dueAt?: string | null }[];
  notify?: { to: AssigneeRef[]; kind: string; title: string; body: string }[];
  /** Users to check: those no longer active are returned, so the run can hand their work to the QA manager. */
  checkActive?: string[];
}

const SYSTEM = 'system:capa';
const escapeLike = (prefix: string) => prefix.replace(/[\\%_]/g, '\\$&');

export function capaActivities({ db, publicUrl, mailDomain }: ActivityDeps) {
  const link = (capa: CapaRef) => `${publicUrl}/api/v1/capas/${capa.number}`;

  async function project(trx: Knex.Transaction, step: CapaStep) {
    const p = step.projection;
    const row = {
      number: step.capa.number,
      workflow_id: step.capa.workflowId,
      title: step.capa.title,
      stage: p.stage,
      outcome: p.outcome,
      round: p.round,
      risk_severity: p.risk?.severity ?? null,
      risk_occurrence: p.risk?.occurrence ?? null,
      risk_score: p.risk?.score ?? null,
      risk_level: p.risk?.level ?? null,
      owner: p.owner ? assigneeKey(p.owner) : null,
      owner_user_id: p.owner?.kind === 'user' ? p.owner.userId : null,
      assignees: p.assignees,
      due_at: p.dueAt,
      merged_into: p.mergedInto,
      initiated_by: p.initiatedBy,
      closed_at: p.closedAt,
      updated_at: trx.fn.now(),
      rev: step.rev,
    };
    const { number: _n, workflow_id: _w, initiated_by: _i, ...changes } = row;
    await trx('capas').insert(row).onConflict('number').merge(changes).where('capas.rev', '<', step.rev);
  }

  return {
    async recordCapaStep(step: CapaStep): Promise<{ outboxIds: string[]; inactive: string[] }> {
      return db.transaction(async (trx) => {
        await project(trx, step);
        const { capa } = step;
        if (step.sources?.sources.length) {
          await trx('capa_sources')
            .insert(
              step.sources.sources.map((s) => ({
                capa_number: capa.number,
                source_type: s.type,
                source_id: s.id,
                linked_by: step.sources!.by,
              })),
            )
            .onConflict(['capa_number', 'source_type', 'source_id'])
            .ignore();
        }
        for (const a of step.actions ?? []) {
          const row = {
            capa_number: capa.number,
            round: a.round,
            action_id: a.id,
            type: a.type,
            description: a.description,
            owner: assigneeKey(a.owner),
            owner_user_id: a.owner.kind === 'user' ? a.owner.userId : null,
            due_at: a.dueAt,
            state: a.state,
            extensions: a.extensions,
            completed_by: a.completedBy,
            completed_at: a.completedAt,
            evidence: a.evidence === null ? null : JSON.stringify(a.evidence),
          };
          await trx('capa_actions').insert(row).onConflict(['capa_number', 'round', 'action_id']).merge();
        }
        if (step.record) {
          await trx('capa_records')
            .insert({
              idempotency_key: activityKey('record'),
              capa_number: capa.number,
              round: step.record.round,
              kind: step.record.kind,
              body: JSON.stringify(step.record.body),
              recorded_by: step.record.by,
            })
            .onConflict('idempotency_key')
            .ignore();
        }
        let signatureId: string | null = null;
        if (step.signature) {
          const sig = step.signature;
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
        for (const c of step.closeTasks ?? []) {
          // closeTasksByPrefix with the closer recorded: a task done by a person names them.
          closedTasks += await trx('tasks')
            .where('state', 'open')
            .andWhere('task_key', 'like', `${escapeLike(c.prefix)}%`)
            .update({ state: c.state, closed_at: trx.fn.now(), closed_by: c.by ?? null });
        }
        for (const r of step.retimeTasks ?? []) {
          await trx('tasks')
            .where('state', 'open')
            .andWhere('task_key', 'like', `${escapeLike(r.prefix)}%`)
            .update({ due_at: r.dueAt });
        }
        for (const t of step.openTasks ?? []) {
          await openTask(trx, {
            taskKey: t.key,
            workflowId: capa.workflowId,
            entityType: 'capa',
            entityId: capa.number,
            kind: t.kind,
            title: t.title,
            assignee: t.assignee,
            dueAt: t.dueAt ?? null,
          });
        }
        const sig = step.signature;
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
        for (const [i, n] of (step.notify ?? []).entries()) {
          const recipients = await resolveRecipients(trx, n.to);
          outboxIds.push(
            ...(await queueNotifications(
              trx,
              recipients,
              { idempotencyKey: activityKey(`n${i}`), kind: n.kind, title: n.title, body: n.body, link: link(capa) },
              mailDomain,
            )),
          );
        }
        const inactive: string[] = step.checkActive?.length
          ? await trx('users').whereIn('id', step.checkActive).where('active', false).pluck('id')
          : [];
        return { outboxIds, inactive };
      });
    },
  };
}

export type CapaActivities = ReturnType<typeof capaActivities>;
