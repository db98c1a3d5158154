import { ApplicationFailure } from '@temporalio/activity';
import type { Knex } from 'knex';
import type { AssigneeRef } from '../common/assignees';
import { FailureType } from '../common/failures';
import type { Actor } from '../common/roles';
import {
  REJECTION_CODES,
  type Disposition,
  type IntakeTimers,
  type RejectionCode,
  type SampleIntakeInput,
  type SampleRecordFacts,
  type SampleState,
  type TimerKind,
} from '../common/sample-intake';
import type { SignatureInput } from '../common/signatures';
import { appendAudit } from '../db/audit';
import { requestCapaIfRuleMet } from '../db/sample-capa-requests';
import { queueNotifications, type NotificationMessage } from '../db/notifications';
import { resolveRecipients } from '../db/recipients';
import { appendCustody, criteriaOf, sampleRecordColumns, sampleTypes } from '../db/sample-intake';
import { recordSignature } from '../db/signatures';
import { closeTasksByPrefix, openTask } from '../db/tasks';
import type { ActivityDeps } from './deps';
import { activityKey } from './keys';
import { writeNotice } from './notice-writer';
import { sampleCapaActivities } from './sample-capa';
import { activeSubmitter, sampleHandOverActivities } from './sample-hand-over';
import { Refusal } from './lib/grant-checks';
import { sampleProofChecks, type SampleProof } from './sample-proof';

/** Identifies the sample a run is about; IDs only, never the requisition's patient identifiers. */
export interface SampleRef {
  workflowId: string;
  sampleId: string;
  accession: string;
  submitter: AssigneeRef | null;
}

const SYSTEM_ACTOR = 'system:sample-intake';
const LAB: AssigneeRef = { kind: 'role', role: 'lab_technician' };
const DIRECTOR: AssigneeRef = { kind: 'role', role: 'lab_director' };

/** What the person a sample waits on must do next; the activity words the task. */
export type SampleNextAction = 'inspect' | 'accept' | 'decide' | 'attach_order' | 'bench_work';
const NEXT_ACTION_WORDING: Record<SampleNextAction, string> = {
  inspect: 'Inspect',
  accept: 'Accept',
  decide: 'Decide on (deviation or rejection)',
  attach_order: 'Attach an order to',
  bench_work: 'Aliquot, store and route',
};

/** The one open task of a sample: one per stage, for whoever must act next. */
export interface StepTask {
  stage: string;
  next: SampleNextAction;
  assignee: AssigneeRef;
  dueAt: string | null;
}
export interface StepCustody {
  event: string;
  from?: string | null;
  to?: string | null;
  condition?: string | null;
  details?: Record<string, unknown>;
}

/**
 * One step of a sample's life as the run states it: the new state, the facts of the record it changed, the custody
 * handoff, the next task, and the audit details.
 */
export interface SampleStep extends SampleRecordFacts {
  ref: SampleRef;
  action: string;
  state: SampleState;
  stage: string;
  dueAt: string | null;
  custody?: StepCustody;
  /** The task that replaces the open one; null closes it, absent leaves it. */
  task?: StepTask | null;
  /** The actor the request named: shown by the run, never recorded; the proof says whom to record. */
  actor?: Actor | null;
  by?: string;
  details?: Record<string, unknown>;
  signature?: SignatureInput;
  proof?: SampleProof;
}

/** A unique-violation from Postgres, e.g. a storage position already taken. */
const isUniqueViolation = (err: unknown) => (err as { code?: string }).code === '23505';

export function sampleIntakeActivities(deps: ActivityDeps) {
  const { db, publicUrl, mailDomain } = deps;
  const { proven, recording } = sampleProofChecks(deps);
  const link = (ref: SampleRef) => `${publicUrl}/api/v1/samples/${ref.accession}`;
  const who = (actor: Actor | null | undefined, by?: string) => actor?.username ?? by ?? SYSTEM_ACTOR;

  async function notify(trx: Knex.Transaction, to: AssigneeRef[], message: Omit<NotificationMessage, 'idempotencyKey'>, suffix = '') {
    const recipients = await resolveRecipients(trx, to);
    return queueNotifications(trx, recipients, { ...message, idempotencyKey: activityKey(suffix) }, mailDomain);
  }
  function audit(
    trx: Knex.Transaction,
    ref: SampleRef,
    action: string,
    details: Record<string, unknown>,
    actor?: Actor | null,
    by?: string,
    suffix = '',
  ) {
    return appendAudit(trx, {
      actorId: actor?.userId ?? null,
      actor: who(actor, by),
      action,
      entityType: 'sample',
      entityId: ref.accession,
      details: { workflowId: ref.workflowId, ...details },
      idempotencyKey: activityKey(suffix),
    });
  }
  const custody = (
    trx: Knex.Transaction,
    ref: SampleRef,
    c: StepCustody,
    actor: string,
    suffix = '',
    piece?: { id: string; accession: string },
  ) =>
    appendCustody(trx, {
      sampleId: piece?.id ?? ref.sampleId,
      accession: piece?.accession ?? ref.accession,
      actor,
      event: c.event,
      from: c.from,
      to: c.to,
      condition: c.condition,
      details: c.details,
      idempotencyKey: activityKey(`custody${suffix}`),
    });
  async function setSample(trx: Knex.Transaction, ref: SampleRef, fields: Record<string, unknown>) {
    await trx('samples')
      .where({ id: ref.sampleId })
      .update({ ...fields, updated_at: trx.fn.now() });
  }
  async function replaceTask(trx: Knex.Transaction, ref: SampleRef, task: StepTask | null | undefined) {
    if (task === undefined) return;
    await closeTasksByPrefix(trx, `${ref.workflowId}:`, 'done');
    if (task) {
      await openTask(trx, {
        taskKey: `${ref.workflowId}:${task.stage}`,
        workflowId: ref.workflowId,
        entityType: 'sample',
        entityId: ref.accession,
        kind: `sample.${task.stage}`,
        title: `${NEXT_ACTION_WORDING[task.next]} specimen ${ref.accession}`,
        assignee: task.assignee,
        dueAt: task.dueAt,
      });
    }
  }
  async function pieceRow(trx: Knex.Transaction, ref: SampleRef, accession: string) {
    const row = await trx('samples')
      .where({ accession })
      .andWhere((q) => q.where('id', ref.sampleId).orWhere('parent_id', ref.sampleId))
      .first('id', 'accession');
    if (!row)
      throw ApplicationFailure.create({
        type: FailureType.NotFound,
        message: `${accession} is not part of ${ref.accession}`,
        nonRetryable: true,
      });
    return row as { id: string; accession: string };
  }

  return {
    ...sampleCapaActivities(deps),
    ...sampleHandOverActivities(deps),

    /**
     * One step of a sample's life: the projection, a custody event, the inbox and the audit trail, in one
     * transaction. A deviation's signature is recorded here too, with its audit event.
     */
    async recordSampleStep(p: SampleStep): Promise<{ signatureId: string | null; actor: Actor | null }> {
      return recording(p.ref, p.action, async (trx) => {
        const shown = await proven(trx, p.ref, p.proof, p.action);
        const actor = shown.actor;
        const by = shown.by ?? p.by;
        // Who received and who inspected are the people Postgres knows, whatever the run was told.
        const facts: SampleRecordFacts = {
          ...p,
          ...(p.receipt && { receipt: { ...p.receipt, by: who(actor, by) } }),
          ...(p.inspection && {
            inspection: { ...p.inspection, record: { ...p.inspection.record, by: actor?.username ?? p.inspection.record.by } },
          }),
        };
        await setSample(trx, p.ref, { state: p.state, stage: p.stage, due_at: p.dueAt, ...sampleRecordColumns(facts) });
        if (p.custody) await custody(trx, p.ref, p.custody, who(actor, by));
        await replaceTask(trx, p.ref, p.task);
        let signatureId: string | null = null;
        if (p.signature && actor) {
          signatureId = await recordSignature(trx, {
            idempotencyKey: `${p.ref.workflowId}:${p.action}:${actor.userId}`,
            entityType: 'sample',
            entityId: p.ref.accession,
            workflowId: p.ref.workflowId,
            round: 1,
            stageIndex: 0,
            stageName: 'acceptance with deviation',
            actor,
            signature: p.signature,
          });
        }
        await audit(
          trx,
          p.ref,
          p.action,
          {
            state: p.state,
            ...(p.details ?? {}),
            ...(p.signature && actor
              ? {
                  signature: {
                    id: signatureId,
                    printedName: actor.printedName,
                    meaning: p.signature.meaning,
                    signedAt: p.signature.signedAt,
                    contentHash: p.signature.contentHash,
                  },
                }
              : {}),
            ...(p.proof?.kind === 'person' ? { grant: p.proof.grant } : {}),
            ...(p.proof?.kind === 'delivery' ? { delivery: p.proof.event.delivery } : {}),
          },
          actor,
          by,
        );
        return { signatureId, actor };
      });
    },

    /**
     * Rejection (CLIA 493.1283): condition and disposition recorded, the submitter told, a recollection requested,
     * aliquots rejected with their parent and their storage freed (full rejection), and a CAPA request written when
     * a configured rule says so — all in one transaction. Returns the outbox to deliver.
     */
    async rejectSample(p: {
      ref: SampleRef;
      actor: Actor;
      code: RejectionCode;
      condition: string;
      disposition: Disposition;
      comment?: string;
      tests: string[];
      full: boolean;
      stage: string;
      proof?: SampleProof;
    }): Promise<{ outboxIds: string[]; noticeIds?: string[]; capaRequestId: string | null; actor: Actor }> {
      const step = p.full ? 'sample.rejected' : 'sample.tests_rejected';
      return recording(p.ref, step, async (trx) => {
        const { actor } = await proven(trx, p.ref, p.proof, step);
        if (!actor) throw new Refusal('not_from_labflow', null);
        const sample = await trx('samples').where({ id: p.ref.sampleId }).first('source', 'rejected_tests');
        const rejectedTests = [...new Set([...(sample.rejected_tests as string[]), ...p.tests])];
        let cascaded: string[] = [];
        if (p.full) {
          const rejection = { state: 'rejected', rejection_code: p.code, rejection_condition: p.condition, disposition: p.disposition };
          await setSample(trx, p.ref, { ...rejection, rejected_tests: rejectedTests, stage: p.stage, due_at: null, overdue: false });
          const children: { id: string; accession: string }[] = await trx('samples')
            .where({ parent_id: p.ref.sampleId })
            .whereNot('state', 'rejected')
            .update({ ...rejection, updated_at: trx.fn.now() })
            .returning(['id', 'accession']);
          cascaded = children.map((c) => c.accession);
          const freed = await trx('sample_storage')
            .whereIn('sample_id', [p.ref.sampleId, ...children.map((c) => c.id)])
            .delete()
            .returning(['sample_id', 'freezer', 'rack', 'box', 'position']);
          await trx('sample_routes').where({ sample_id: p.ref.sampleId, state: 'queued' }).update({ state: 'cancelled' });
          for (const [i, piece] of [{ id: p.ref.sampleId, accession: p.ref.accession }, ...children].entries()) {
            const place = freed.find((f: { sample_id: string }) => f.sample_id === piece.id);
            await custody(
              trx,
              p.ref,
              {
                event: 'disposed',
                from: place ? `${place.freezer}/${place.rack}/${place.box}/${place.position}` : null,
                to: p.disposition,
                condition: p.condition,
                details: { code: p.code },
              },
              actor.username,
              `:${i}`,
              piece,
            );
          }
          await closeTasksByPrefix(trx, `${p.ref.workflowId}:`, 'cancelled');
        } else {
          await setSample(trx, p.ref, { rejected_tests: rejectedTests });
          await trx('sample_routes')
            .where({ sample_id: p.ref.sampleId, state: 'queued' })
            .whereIn('test_code', p.tests)
            .update({ state: 'cancelled' });
        }
        await trx('sample_recollection_requests')
          .insert({
            sample_id: p.ref.sampleId,
            accession: p.ref.accession,
            tests: p.tests,
            rejection_code: p.code,
            reason: `${REJECTION_CODES[p.code]}: ${p.condition}`,
            idempotency_key: activityKey('recollection'),
          })
          .onConflict('idempotency_key')
          .ignore();
        // A submitter deactivated meanwhile has handed their work to the lab director, whom the request goes to.
        const submitter = await activeSubmitter(trx, p.ref.submitter);
        await openTask(trx, {
          taskKey: `${p.ref.workflowId}:recollect:${p.tests.join(',')}`,
          workflowId: p.ref.workflowId,
          entityType: 'sample',
          entityId: p.ref.accession,
          kind: 'sample.recollection',
          title: `Recollect a specimen for ${p.ref.accession} (${p.tests.join(', ')}): ${REJECTION_CODES[p.code]}`,
          assignee: submitter,
        });

        // The CAPA hook: the first active rule this rejection satisfies writes one pending request.
        const capaRequestId = await requestCapaIfRuleMet(trx, {
          accession: p.ref.accession,
          workflowId: p.ref.workflowId,
          source: sample.source,
          code: p.code,
          condition: p.condition,
          tests: p.tests,
          idempotencyKey: activityKey('capa'),
        });

        await audit(
          trx,
          p.ref,
          step,
          {
            code: p.code,
            reason: REJECTION_CODES[p.code],
            condition: p.condition,
            disposition: p.disposition,
            comment: p.comment ?? null,
            tests: p.tests,
            cascadedTo: cascaded,
            capaRequestId,
            grant: p.proof?.kind === 'person' ? p.proof.grant : undefined,
          },
          actor,
        );
        // Urgent: the submitter must recollect, so SMS and Slack at once beside in-app and email, and up the
        // escalation chain until someone acknowledges (the notice's run, started by the sample's run).
        const notice = await writeNotice(
          trx,
          {
            idempotencyKey: activityKey('notice'),
            kind: 'sample.rejected',
            priority: 'urgent',
            subjectType: 'sample',
            subjectId: p.ref.accession,
            facts: {
              accession: p.ref.accession,
              code: p.code,
              reason: REJECTION_CODES[p.code],
              condition: p.condition,
              disposition: p.disposition,
              tests: p.tests,
              full: p.full,
            },
            link: link(p.ref),
            recipients: submitter ? await resolveRecipients(trx, [submitter]) : [],
          },
          mailDomain,
        );
        return { outboxIds: notice.outboxIds, noticeIds: notice.needsRun ? [notice.noticeId] : [], capaRequestId, actor };
      });
    },

    /** Child samples with lineage (parent → children), one custody event per split. */
    async createAliquots(p: {
      ref: SampleRef;
      actor: Actor;
      children: { accession: string; volumeMl: number }[];
      stage: string;
      dueAt: string | null;
      task: StepTask | null;
      proof?: SampleProof;
    }) {
      await recording(p.ref, 'sample.aliquoted', async (trx) => {
        const { actor } = await proven(trx, p.ref, p.proof, 'sample.aliquoted');
        if (!actor) throw new Refusal('not_from_labflow', null);
        const parent = await trx('samples').where({ id: p.ref.sampleId }).first();
        for (const [i, child] of p.children.entries()) {
          const [row] = await trx('samples')
            .insert({
              accession: child.accession,
              parent_id: parent.id,
              source: parent.source,
              sample_type: parent.sample_type,
              priority: parent.priority,
              requested_tests: [],
              has_order: parent.has_order,
              submitter_id: parent.submitter_id,
              collected_at: parent.collected_at,
              received_at: parent.received_at,
              state: 'accepted',
              workflow_id: p.ref.workflowId,
              volume_ml: child.volumeMl,
            })
            .onConflict('accession')
            .merge(['accession'])
            .returning(['id', 'accession']);
          await custody(
            trx,
            p.ref,
            { event: 'aliquoted', from: p.ref.accession, to: child.accession, details: { volumeMl: child.volumeMl } },
            actor.username,
            `:${i}`,
            row,
          );
        }
        await setSample(trx, p.ref, { state: 'aliquoted', stage: p.stage, due_at: p.dueAt });
        await replaceTask(trx, p.ref, p.task);
        await audit(trx, p.ref, 'sample.aliquoted', { children: p.children }, actor);
      });
    },

    /** A position holds one sample: a taken position is refused (PositionTaken); a stored piece moves. */
    async storeSample(p: {
      ref: SampleRef;
      actor: Actor;
      piece: string;
      freezer: string;
      rack: string;
      box: string;
      position: string;
      stage: string;
      dueAt: string | null;
      task: StepTask | null;
      proof?: SampleProof;
    }) {
      const to = `${p.freezer}/${p.rack}/${p.box}/${p.position}`;
      try {
        await recording(p.ref, 'sample.stored', async (trx) => {
          const { actor } = await proven(trx, p.ref, p.proof, 'sample.stored');
          if (!actor) throw new Refusal('not_from_labflow', null);
          const piece = await pieceRow(trx, p.ref, p.piece);
          const [previous] = await trx('sample_storage')
            .where({ sample_id: piece.id })
            .delete()
            .returning(['freezer', 'rack', 'box', 'position']);
          await trx('sample_storage').insert({ freezer: p.freezer, rack: p.rack, box: p.box, position: p.position, sample_id: piece.id });
          const from = previous ? `${previous.freezer}/${previous.rack}/${previous.box}/${previous.position}` : 'accessioning bench';
          await custody(trx, p.ref, { event: 'stored', from, to }, actor.username, '', piece);
          await setSample(trx, p.ref, { state: 'stored', stage: p.stage, due_at: p.dueAt });
          await replaceTask(trx, p.ref, p.task);
          await audit(trx, p.ref, 'sample.stored', { piece: p.piece, position: to, from }, actor);
        });
      } catch (err) {
        if (!isUniqueViolation(err)) throw err;
        const holder = await db('sample_storage as st')
          .join('samples as s', 's.id', 'st.sample_id')
          .where({ freezer: p.freezer, rack: p.rack, box: p.box, position: p.position })
          .first('s.accession');
        throw ApplicationFailure.create({
          type: FailureType.PositionTaken,
          message: `position ${to} already holds ${holder?.accession ?? 'another sample'}`,
          nonRetryable: true,
        });
      }
    },

    /** Routes tests to their work queues; answers the queue of each. */
    async routeTests(p: {
      ref: SampleRef;
      actor: Actor;
      tests: { test: string; piece: string }[];
      stage: string;
      dueAt: string | null;
      task: StepTask | null;
      proof?: SampleProof;
    }) {
      return recording(p.ref, 'sample.routed', async (trx) => {
        const { actor } = await proven(trx, p.ref, p.proof, 'sample.routed');
        if (!actor) throw new Refusal('not_from_labflow', null);
        const queues = new Map<string, string>(
          (
            await trx('test_codes')
              .whereIn(
                'code',
                p.tests.map((t) => t.test),
              )
              .select('code', 'work_queue')
          ).map((r) => [r.code, r.work_queue]),
        );
        const routed: { test: string; piece: string; workQueue: string }[] = [];
        for (const [i, t] of p.tests.entries()) {
          const workQueue = queues.get(t.test);
          if (!workQueue)
            throw ApplicationFailure.create({ type: FailureType.InvalidInput, message: `unknown test code ${t.test}`, nonRetryable: true });
          const piece = await pieceRow(trx, p.ref, t.piece);
          await trx('sample_routes')
            .insert({ sample_id: p.ref.sampleId, test_code: t.test, work_queue: workQueue, piece_accession: piece.accession })
            .onConflict(['sample_id', 'test_code'])
            .merge(['work_queue', 'piece_accession']);
          await custody(
            trx,
            p.ref,
            { event: 'routed', from: 'accessioning bench', to: `work queue ${workQueue}`, details: { test: t.test } },
            actor.username,
            `:${i}`,
            piece,
          );
          routed.push({ ...t, workQueue });
        }
        await setSample(trx, p.ref, { state: 'routed', stage: p.stage, due_at: p.dueAt });
        await replaceTask(trx, p.ref, p.task);
        await audit(trx, p.ref, 'sample.routed', { routes: routed }, actor);
        return routed;
      });
    },

    /** A result is ready for some tests (instrument or external LIMS). */
    async recordResults(p: { ref: SampleRef; tests: string[]; by: string; eventId: string; proof?: SampleProof }) {
      await recording(p.ref, 'sample.result_ready', async (trx) => {
        const { by } = await proven(trx, p.ref, p.proof, 'sample.result_ready');
        await trx('sample_routes')
          .where({ sample_id: p.ref.sampleId })
          .whereIn('test_code', p.tests)
          .update({ state: 'resulted', resulted_at: trx.fn.now() });
        await audit(trx, p.ref, 'sample.result_ready', { tests: p.tests, eventId: p.eventId }, null, by ?? p.by);
      });
    },

    /** A timer ran out: recorded, flagged for lists, a task for whoever must act, and people told. */
    async sampleTimerFired(p: { ref: SampleRef; kind: TimerKind; dueAt: string }): Promise<string[]> {
      return db.transaction(async (trx) => {
        const spec: Record<TimerKind, { to: AssigneeRef[]; task: AssigneeRef; title: string }> = {
          in_transit_overdue: {
            to: [LAB, ...(p.ref.submitter ? [p.ref.submitter] : [])],
            task: LAB,
            title: `Specimen ${p.ref.accession} is overdue in transit`,
          },
          specimen_hold: {
            to: [LAB, ...(p.ref.submitter ? [p.ref.submitter] : [])],
            task: LAB,
            title: `Order ${p.ref.accession}: no specimen received`,
          },
          order_hold: { to: [LAB], task: LAB, title: `Specimen ${p.ref.accession} still has no order` },
          stability_expired: { to: [LAB, DIRECTOR], task: DIRECTOR, title: `Specimen ${p.ref.accession} is past its stability window` },
          stat_overdue: { to: [DIRECTOR, LAB], task: DIRECTOR, title: `STAT ${p.ref.accession} missed its turnaround time` },
        };
        const s = spec[p.kind];
        await trx('samples').where({ id: p.ref.sampleId }).update({ overdue: true, updated_at: trx.fn.now() });
        await openTask(trx, {
          taskKey: `${p.ref.workflowId}:timer:${p.kind}`,
          workflowId: p.ref.workflowId,
          entityType: 'sample',
          entityId: p.ref.accession,
          kind: `sample.${p.kind}`,
          title: s.title,
          assignee: s.task,
          dueAt: p.dueAt,
        });
        await audit(trx, p.ref, `sample.${p.kind}`, { dueAt: p.dueAt });
        return notify(trx, s.to, { kind: `sample.${p.kind}`, title: s.title, body: `${s.title} (due ${p.dueAt}).`, link: link(p.ref) });
      });
    },

    /** One page of a batch's samples as run inputs (IDs and criteria, no PHI), in accession order. */
    async batchSamplePage(p: { batchId: string; after: string | null; limit: number; timers: IntakeTimers }): Promise<SampleIntakeInput[]> {
      const q = db('samples as s')
        .leftJoin('users as u', 'u.id', 's.submitter_id')
        .where({ 's.batch_id': p.batchId })
        .whereNull('s.parent_id')
        .orderBy('s.accession')
        .limit(p.limit);
      if (p.after) q.where('s.accession', '>', p.after);
      const rows = await q.select(
        's.id',
        's.accession',
        's.sample_type',
        's.priority',
        's.requested_tests',
        's.has_order',
        's.collected_at',
        's.registered_at',
        's.submitter_id',
        'u.username as submitter',
        's.arrival',
      );
      const types = await sampleTypes(db);
      return rows.map((r) => ({
        sampleId: r.id,
        accession: r.accession,
        sampleType: r.sample_type,
        priority: r.priority,
        requestedTests: r.requested_tests,
        hasOrder: r.has_order,
        collectedAt: r.collected_at ? r.collected_at.toISOString() : null,
        registeredAt: r.registered_at.toISOString(),
        criteria: criteriaOf(types.get(r.sample_type)!),
        timers: p.timers,
        submitter: r.submitter_id ? { kind: 'user', userId: r.submitter_id, username: r.submitter } : null,
        ...(r.arrival ? { arrival: r.arrival } : {}),
      }));
    },
  };
}
