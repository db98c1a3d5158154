import { stubActivityWorker } from '../helpers/stub-worker';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { Context } from '@temporalio/activity';
import type { WorkflowHandle } from '@temporalio/client';
import type { CapaStep } from '../../activities/capa';
import type { AssigneeRef } from '../../common/assignees';
import {
  cancelCapaUpdate,
  capaStateQuery,
  closeCapaUpdate,
  completeActionUpdate,
  containmentUpdate,
  decidePlanUpdate,
  effectivenessUpdate,
  investigationUpdate,
  reopenCapaUpdate,
  requestExtensionUpdate,
  submitPlanUpdate,
  triageUpdate,
  type CapaDurations,
  type CapaInput,
  type CapaState,
} from '../../common/capa';
import type { Actor } from '../../common/roles';
import type { capaWorkflow } from '../../workflows';
import { testEnv } from '../setup/env';
import { waitFor } from '../helpers/wait';

const actor = (username: string, roles: Actor['roles']): Actor => ({
  userId: `id-${username}`,
  username,
  printedName: `${username[0].toUpperCase()}${username.slice(1)}`,
  roles,
});
const ref = (a: Actor): AssigneeRef => ({ kind: 'user', userId: a.userId, username: a.username });
/** A well-formed grant ID: the stub activities accept any, as Postgres is not here to check it. */
const GRANT = 'g'.repeat(43);
const qa = actor('quinn', ['qa_manager']);
const owner = actor('olga', ['lab_technician']);
const tech = actor('theo', ['lab_technician']);
const director = actor('dora', ['lab_director']);
const initiator = actor('ian', ['clinician']);
const inSeconds = (s: number) => new Date(Date.now() + s * 1000).toISOString();
const sign = (contentHash: string | null | undefined) => ({
  meaning: 'approval',
  contentHash: contentHash ?? '',
  signedAt: new Date().toISOString(),
});

/** The activities as stubs that record what the run asked for: no Postgres, no SMTP. */
function stubActivities(opts: { inactiveOn?: (step: CapaStep) => string[] } = {}) {
  const steps: CapaStep[] = [];
  const delivered: string[][] = [];
  /** The run that asked for each step and each delivery, by outbox ID. */
  const runOf = new Map<string, { recordedBy: string; deliveredBy?: string }>();
  const runId = () => Context.current().info.workflowExecution?.runId ?? '';
  return {
    steps,
    delivered,
    runOf,
    actions: () => steps.map((s) => s.audit.action),
    activities: {
      async recordCapaStep(step: CapaStep) {
        steps.push(step);
        (step.notify ?? []).forEach((_, i) => runOf.set(`outbox-${step.rev}-${i}`, { recordedBy: runId() }));
        return { outboxIds: (step.notify ?? []).map((_, i) => `outbox-${step.rev}-${i}`), inactive: opts.inactiveOn?.(step) ?? [] };
      },
      async deliverEmails(outboxIds: string[]) {
        delivered.push(outboxIds);
        for (const id of outboxIds) {
          const entry = runOf.get(id);
          if (entry) entry.deliveredBy = runId();
        }
        return { sent: outboxIds.length };
      },
      async supplierQualificationStatuses() {
        return [];
      },
    },
  };
}

/** A worker on its own task queue, running the real capaWorkflow from the suite's bundle, while `body` runs. */
async function withWorker<T>(activities: object, body: (taskQueue: string) => Promise<T>): Promise<T> {
  const taskQueue = `test-capa-wf-${randomBytes(4).toString('hex')}`;
  const worker = await stubActivityWorker(taskQueue, activities);
  return worker.runUntil(body(taskQueue));
}

const durations = (changes: Partial<CapaDurations> = {}): CapaDurations => ({
  containment: '1h',
  investigation: '1h',
  effectivenessWait: '1s',
  reminderBefore: '10m',
  ...changes,
});

/** Starts a CAPA run and waits for its first step (initiation) to be written. */
async function startCapa(taskQueue: string, stubs: { steps: CapaStep[] }, changes: Partial<CapaInput> = {}) {
  const number = `CAPA-2099-${randomBytes(3).readUIntBE(0, 3)}`;
  const input: CapaInput = {
    number,
    title: 'Haemolysed samples',
    description: 'Repeated haemolysis on morning draws',
    sources: [{ type: 'sample', id: `ACC-${number}` }],
    initiatedBy: { userId: initiator.userId, username: initiator.username },
    durations: durations(),
    ...changes,
  };
  const handle = await testEnv().client.workflow.start<typeof capaWorkflow>('capaWorkflow', {
    taskQueue,
    workflowId: `capa:${number}`,
    args: [input],
  });
  const workflowId = `capa:${number}`;
  await waitFor(() => stubs.steps.some((s) => s.capa.workflowId === workflowId && s.audit.action === 'capa.initiated'), 'initiation');
  return { handle, number, workflowId };
}

const stageIs = (handle: WorkflowHandle, stage: CapaState['stage']) =>
  waitFor(async () => {
    const s = await handle.query(capaStateQuery);
    return s.stage === stage ? s : null;
  }, `stage ${stage}`);

/** Expects the Update to be refused by its validator with this failure type. */
async function refused(promise: Promise<unknown>, type: string): Promise<void> {
  await assert.rejects(promise, (err: Error & { cause?: { type?: string } }) => {
    assert.equal(err.cause?.type, type, String(err.cause ?? err));
    return true;
  });
}

/** Triage → containment → investigation → a plan of these actions, approved: the CAPA ends in implementation. */
async function toImplementation(handle: WorkflowHandle, actions: { owner: Actor; dueInSeconds: number }[]) {
  await handle.executeUpdate(triageUpdate, {
    args: [{ grant: GRANT, actor: qa, decision: 'accept', severity: 4, occurrence: 3, owner: ref(owner) }],
  });
  await handle.executeUpdate(containmentUpdate, {
    args: [{ grant: GRANT, actor: owner, summary: 'Quarantined tubes', actions: ['Hold ward 3'] }],
  });
  await handle.executeUpdate(investigationUpdate, {
    args: [{ grant: GRANT, actor: owner, method: 'five_whys', rootCause: 'Tourniquet too long', findings: '12 draws' }],
  });
  const planned = await handle.executeUpdate(submitPlanUpdate, {
    args: [
      {
        grant: GRANT,
        actor: owner,
        actions: actions.map((a, i) => ({
          type: 'corrective' as const,
          description: `step ${i + 1}`,
          owner: ref(a.owner),
          dueAt: inSeconds(a.dueInSeconds),
        })),
        criteria: [{ description: 'Haemolysis rate', measure: 'below 2%' }],
      },
    ],
  });
  assert.equal(planned.stage, 'plan_approval');
  const approved = await handle.executeUpdate(decidePlanUpdate, {
    args: [{ grant: GRANT, actor: qa, decision: 'approve', signature: sign(planned.plan?.contentHash) }],
  });
  assert.equal(approved.stage, 'implementation');
  return approved;
}

describe('the CAPA workflow on the dev server with stub activities', () => {
  it('runs from initiation through triage, plan, actions and effectiveness to a signed closure, then ends after its reopen window', async () => {
    const stubs = stubActivities();
    await withWorker(stubs.activities, async (taskQueue) => {
      const { handle, workflowId } = await startCapa(taskQueue, stubs, { reopenWindow: '2s' });
      const triage = stubs.steps[0];
      assert.equal(triage.projection.stage, 'triage');
      assert.deepEqual(triage.notify, [{ to: [{ kind: 'role', role: 'qa_manager' }], kind: 'capa.triage', initiatedBy: 'ian' }]);
      assert.deepEqual(triage.openTasks, [
        {
          key: `${workflowId}:r1:triage:role:qa_manager`,
          subject: { what: 'triage' },
          assignee: { kind: 'role', role: 'qa_manager' },
          dueAt: null,
        },
      ]);

      const approved = await toImplementation(handle, [
        { owner: owner, dueInSeconds: 3600 },
        { owner: tech, dueInSeconds: 7200 },
      ]);
      assert.deepEqual(approved.risk, { severity: 4, occurrence: 3, score: 12, level: 'medium' });
      assert.deepEqual(approved.pendingAssignees.sort(), ['user:olga', 'user:theo']);
      const approval = stubs.steps.at(-1);
      assert.equal(approval?.signature?.stage, 'plan_approval');
      assert.deepEqual(
        approval?.notify?.map((n) => n.kind === 'capa.action_assigned' && [n.actionId, n.to]),
        [
          ['A1', [ref(owner)]],
          ['A2', [ref(tech)]],
        ],
      );

      await handle.executeUpdate(completeActionUpdate, {
        args: [{ grant: GRANT, actor: owner, actionId: 'A1', evidence: { text: 'done', attachments: [] } }],
      });
      const last = await handle.executeUpdate(completeActionUpdate, {
        args: [{ grant: GRANT, actor: tech, actionId: 'A2', evidence: { text: 'trained', attachments: ['doc:TR-9'] } }],
      });
      assert.equal(last.stage, 'effectiveness_wait');
      // The one-second effectiveness wait is a timer of the run.
      await stageIs(handle, 'effectiveness_review');
      const passed = await handle.executeUpdate(effectivenessUpdate, {
        args: [{ grant: GRANT, actor: director, results: [{ criterionId: 'C1', met: true, evidence: 'rate 1.1%' }], comment: '' }],
      });
      assert.ok(passed.closureContentHash);
      assert.deepEqual(passed.pendingAssignees, ['role:qa_manager']);
      const closed = await handle.executeUpdate(closeCapaUpdate, {
        args: [{ grant: GRANT, actor: qa, signature: sign(passed.closureContentHash) }],
      });
      assert.equal(closed.stage, 'closed');
      assert.equal(closed.outcome, 'effective');

      const ended = await handle.result();
      assert.equal(ended.stage, 'closed', 'the run ends by itself once the reopen window is over');
      assert.deepEqual(stubs.actions(), [
        'capa.initiated',
        'capa.triaged',
        'capa.contained',
        'capa.root_cause_recorded',
        'capa.plan_submitted',
        'capa.plan_approved',
        'capa.action_completed',
        'capa.action_completed',
        'capa.effectiveness_due',
        'capa.effectiveness_passed',
        'capa.closed',
      ]);
      assert.deepEqual(
        stubs.steps.map((s) => s.rev),
        stubs.steps.map((_, i) => i + 1),
        'each step carries the next revision',
      );
      const closing = stubs.steps.at(-1);
      assert.deepEqual(closing?.closeTasks, [{ prefix: `${workflowId}:r1:closure:role:qa_manager`, state: 'done', by: qa.userId }]);
      assert.deepEqual(closing?.notify, [{ to: [ref(owner), ref(initiator)], kind: 'capa.closed', outcome: 'effective', atTriage: false }]);
      const outboxIds = stubs.steps.flatMap((s) => (s.notify ?? []).map((_, i) => `outbox-${s.rev}-${i}`));
      assert.deepEqual(stubs.delivered.flat().sort(), outboxIds.sort(), 'every queued email is handed to delivery');
    });
  });

  it('refuses the wrong stage, the wrong person and a duplicate without recording anything, then cancels', async () => {
    const stubs = stubActivities();
    await withWorker(stubs.activities, async (taskQueue) => {
      const { handle, workflowId } = await startCapa(taskQueue, stubs);
      const written = stubs.steps.length;
      await refused(
        handle.executeUpdate(containmentUpdate, { args: [{ grant: GRANT, actor: owner, summary: 'early', actions: [] }] }),
        'WrongStage',
      );
      await refused(
        handle.executeUpdate(triageUpdate, {
          args: [{ grant: GRANT, actor: owner, decision: 'accept', severity: 3, occurrence: 3, owner: ref(owner) }],
        }),
        'Forbidden',
      );
      assert.equal(stubs.steps.length, written, 'a refused Update writes nothing');

      await handle.executeUpdate(triageUpdate, {
        args: [{ grant: GRANT, actor: qa, decision: 'accept', severity: 2, occurrence: 2, owner: ref(owner) }],
      });
      await refused(
        handle.executeUpdate(containmentUpdate, { args: [{ grant: GRANT, actor: tech, summary: 'not mine', actions: [] }] }),
        'NotAssignee',
      );
      await handle.executeUpdate(containmentUpdate, { args: [{ grant: GRANT, actor: owner, summary: 'contained', actions: [] }] });
      await handle.executeUpdate(investigationUpdate, {
        args: [{ grant: GRANT, actor: owner, method: 'ishikawa', rootCause: 'needle gauge', findings: 'gauge 25' }],
      });
      const planned = await handle.executeUpdate(submitPlanUpdate, {
        args: [
          {
            grant: GRANT,
            actor: owner,
            actions: [
              { type: 'correction', description: 'one', owner: ref(owner), dueAt: inSeconds(3600) },
              { type: 'preventive', description: 'two', owner: ref(owner), dueAt: inSeconds(3600) },
            ],
            criteria: [{ description: 'rate', measure: 'below 2%' }],
          },
        ],
      });
      await refused(
        handle.executeUpdate(decidePlanUpdate, { args: [{ grant: GRANT, actor: qa, decision: 'approve', signature: sign('stale') }] }),
        'StaleContentHash',
      );
      await handle.executeUpdate(decidePlanUpdate, {
        args: [{ grant: GRANT, actor: qa, decision: 'approve', signature: sign(planned.plan?.contentHash) }],
      });
      await refused(
        handle.executeUpdate(completeActionUpdate, {
          args: [{ grant: GRANT, actor: tech, actionId: 'A1', evidence: { text: 'x', attachments: [] } }],
        }),
        'NotAssignee',
      );
      const extension = { grant: GRANT, actor: owner, actionId: 'A1', dueAt: inSeconds(7200), reason: 'parts late' };
      await handle.executeUpdate(requestExtensionUpdate, { args: [extension] });
      await refused(handle.executeUpdate(requestExtensionUpdate, { args: [extension] }), 'DuplicateDecision');
      await handle.executeUpdate(completeActionUpdate, {
        args: [{ grant: GRANT, actor: owner, actionId: 'A1', evidence: { text: 'x', attachments: [] } }],
      });
      await refused(
        handle.executeUpdate(completeActionUpdate, {
          args: [{ grant: GRANT, actor: owner, actionId: 'A1', evidence: { text: 'x', attachments: [] } }],
        }),
        'DuplicateDecision',
      );
      const beforeCancel = stubs.steps.length;
      await refused(handle.executeUpdate(cancelCapaUpdate, { args: [{ grant: GRANT, actor: qa, reason: ' ' }] }), 'InvalidInput');
      assert.equal(stubs.steps.length, beforeCancel);

      const cancelled = await handle.executeUpdate(cancelCapaUpdate, { args: [{ grant: GRANT, actor: qa, reason: 'raised in error' }] });
      assert.equal(cancelled.stage, 'cancelled');
      assert.equal((await handle.result()).stage, 'cancelled', 'a cancelled CAPA’s run ends');
      const cancel = stubs.steps.at(-1);
      assert.equal(cancel?.closeTasks?.[0]?.prefix, `${workflowId}:`);
      assert.equal(cancel?.closeTasks?.[0]?.state, 'cancelled');
      assert.deepEqual(
        cancel?.actions?.map((a) => [a.id, a.state]),
        [['A2', 'superseded']],
      );
    });
  });

  it('reminds the holder before a deadline, escalates when it passes and hands an inactive holder’s work to the QA manager', async () => {
    const stubs = stubActivities({ inactiveOn: (step) => (step.audit.action === 'capa.overdue' ? (step.checkActive ?? []) : []) });
    await withWorker(stubs.activities, async (taskQueue) => {
      const { handle, workflowId } = await startCapa(taskQueue, stubs, {
        durations: durations({ containment: '10s', reminderBefore: '5s' }),
      });
      await handle.executeUpdate(triageUpdate, {
        args: [{ grant: GRANT, actor: qa, decision: 'accept', severity: 2, occurrence: 2, owner: ref(owner) }],
      });
      await waitFor(() => stubs.steps.find((s) => s.audit.action === 'capa.reassigned'), 'the hand-over', 45_000);
      assert.deepEqual(stubs.actions(), ['capa.initiated', 'capa.triaged', 'capa.reminder', 'capa.overdue', 'capa.reassigned']);
      const [reminder, overdue, handover] = stubs.steps.slice(2);
      assert.deepEqual(
        reminder.notify?.map((n) => [n.kind, n.to]),
        [['capa.reminder', [ref(owner)]]],
      );
      assert.deepEqual(
        overdue.notify?.map((n) => [n.kind, n.to]),
        [['capa.overdue', [ref(owner), ref(qa)]]],
      );
      assert.deepEqual(overdue.checkActive, [owner.userId]);
      assert.deepEqual(handover.closeTasks?.[0], { prefix: `${workflowId}:r1:containment:user:olga`, state: 'reassigned' });
      assert.deepEqual(handover.notify, [{ to: [ref(qa)], kind: 'capa.reassigned', from: 'olga', moved: ['owner'] }]);

      const state = await handle.query(capaStateQuery);
      assert.deepEqual(state.owner, ref(qa));
      assert.equal(state.deadline?.escalated, true, 'an escalated deadline is not escalated again');
      await handle.executeUpdate(cancelCapaUpdate, { args: [{ grant: GRANT, actor: qa, reason: 'done testing' }] });
      await handle.result();
    });
  });

  it('closes an unfounded CAPA at triage, reopens it to triage, and merges a duplicate’s sources into another run', async () => {
    const stubs = stubActivities();
    await withWorker(stubs.activities, async (taskQueue) => {
      const target = await startCapa(taskQueue, stubs);
      const unfounded = await target.handle.executeUpdate(triageUpdate, {
        args: [{ grant: GRANT, actor: qa, decision: 'unfounded', reason: 'within specification' }],
      });
      assert.equal(unfounded.outcome, 'unfounded');
      const reopened = await target.handle.executeUpdate(reopenCapaUpdate, { args: [{ grant: GRANT, actor: qa, reason: 'new data' }] });
      assert.equal(reopened.stage, 'triage');
      assert.equal(reopened.round, 2);

      const duplicate = await startCapa(taskQueue, stubs);
      await refused(
        duplicate.handle.executeUpdate(triageUpdate, {
          args: [{ grant: GRANT, actor: qa, decision: 'merge', mergeInto: duplicate.number, reason: 'self' }],
        }),
        'InvalidInput',
      );
      const merged = await duplicate.handle.executeUpdate(triageUpdate, {
        args: [{ grant: GRANT, actor: qa, decision: 'merge', mergeInto: target.number, reason: 'same problem' }],
      });
      assert.equal(merged.outcome, 'merged');
      const linked = await waitFor(async () => {
        const s = await target.handle.query(capaStateQuery);
        return s.sources.length === 2 ? s : null;
      }, 'the duplicate’s source on the target');
      assert.deepEqual(linked.sources[1], { type: 'sample', id: `ACC-${duplicate.number}` });
      const link = stubs.steps.find((s) => s.audit.action === 'capa.sources_linked');
      assert.equal(link?.sources?.by, `capa:${duplicate.number}`);
      await target.handle.terminate('test over');
      await duplicate.handle.terminate('test over');
    });
  });

  it('continues as new once its history passes the limit, after its deliveries, and carries its state into the new run', async () => {
    const stubs = stubActivities();
    await withWorker(stubs.activities, async (taskQueue) => {
      const { handle, workflowId } = await startCapa(taskQueue, stubs, { continueAsNewAfter: 30 });
      const first = (await handle.describe()).runId;
      await toImplementation(handle, [{ owner, dueInSeconds: 3600 }]);
      const next = testEnv().client.workflow.getHandle(workflowId);
      await waitFor(async () => (await next.describe()).runId !== first, 'a continued run');
      // The Updates go to whichever run is current, so the continuation may come before the last of them; what
      // the old run queued, it delivered itself before it continued.
      const queuedByOld = [...stubs.runOf].filter(([, run]) => run.recordedBy === first);
      assert.ok(queuedByOld.length >= 2, 'the old run queued emails');
      assert.deepEqual(
        queuedByOld.filter(([, run]) => run.deliveredBy !== first).map(([id]) => id),
        [],
        'the old run handed every email it queued to delivery before it continued',
      );
      const state = await next.query(capaStateQuery);
      assert.equal(state.stage, 'implementation');
      assert.equal(state.plan?.actions[0].owner.kind, 'user');
      const done = await next.executeUpdate(completeActionUpdate, {
        args: [{ grant: GRANT, actor: owner, actionId: 'A1', evidence: { text: 'x', attachments: [] } }],
      });
      assert.equal(done.stage, 'effectiveness_wait', 'the continued run takes Updates where the old one stopped');
      const previous = await testEnv().client.workflow.getHandle(workflowId, first).describe();
      assert.equal(previous.status.name, 'CONTINUED_AS_NEW');
      assert.equal(stubs.steps.filter((s) => s.audit.action === 'capa.initiated').length, 1, 'the continued run does not initiate again');
      await next.terminate('test over');
    });
  });
});
