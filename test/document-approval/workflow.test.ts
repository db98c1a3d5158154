import { stubActivityWorker } from '../helpers/stub-worker';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { WorkflowUpdateFailedError, type WorkflowHandle } from '@temporalio/client';
import { ApplicationFailure } from '@temporalio/common';
import { type Worker } from '@temporalio/worker';
import type { AssigneeRef } from '../../common/assignees';
import {
  completePeriodicReviewUpdate,
  decideUpdate,
  documentStateQuery,
  extendDueUpdate,
  obsoleteUpdate,
  uploadRevisionUpdate,
  withdrawUpdate,
  type DecideArgs,
  type DocumentApprovalInput,
  type DocumentApprovalState,
  type RoutingStage,
} from '../../common/document-approval';
import { FailureType } from '../../common/failures';
import type { Actor, Role } from '../../common/roles';
import type { documentApprovalWorkflow } from '../../workflows';
import { testEnv } from '../setup/env';
import { waitFor } from '../helpers/wait';

/** A well-formed grant ID: the stub activities accept any, as Postgres is not here to check it. */
const GRANT = 'g'.repeat(43);

/**
 * The real documentApprovalWorkflow on the dev server with stub activities that record what they were asked:
 * no Postgres, no API. Durations are seconds.
 */
describe('document approval workflow with stub activities', () => {
  let worker: Worker;
  let running: Promise<void>;
  const taskQueue = `doc-approval-wf-${randomUUID()}`;
  let calls: { name: string; args: Record<string, unknown> }[] = [];

  const record =
    (name: string, answer: unknown = []) =>
    async (args: Record<string, unknown>) => {
      calls.push({ name, args });
      return answer;
    };
  const activities = {
    openReviewStage: record('openReviewStage', ['outbox-stage']),
    acceptRequest: async (args: Record<string, unknown>) => (calls.push({ name: 'acceptRequest', args }), args.actor),
    // Mallory stands for a signer whose earlier stage the run does not show (the recording step knows better).
    recordDecision: async (args: Record<string, unknown>) => {
      if ((args.actor as Actor).username === 'mallory') {
        throw ApplicationFailure.create({
          type: FailureType.DuplicateDecision,
          message: 'mallory already decided another stage of round 1; one person signs at most one stage per round',
          nonRetryable: true,
        });
      }
      return record('recordDecision', { signatureId: null })(args);
    },
    closeReviewStage: record('closeReviewStage', undefined),
    remindStage: record('remindStage', ['outbox-reminder']),
    requestRevision: record('requestRevision', ['outbox-revise']),
    applyRevision: record('applyRevision', undefined),
    closeVersion: record('closeVersion', ['outbox-closed']),
    makeEffective: record('makeEffective', { supersededWorkflowId: null, outboxIds: [] }),
    closeOpenTasks: record('closeOpenTasks', undefined),
    openPeriodicReview: record('openPeriodicReview', ['outbox-periodic']),
    completePeriodicReview: record('completePeriodicReview', undefined),
    reassignStage: record('reassignStage', []),
    extendStageDue: record('extendStageDue', undefined),
    deliverEmails: record('deliverEmails', undefined),
  };

  before(async () => {
    worker = await stubActivityWorker(taskQueue, activities);
    running = worker.run();
  });
  after(async () => {
    worker.shutdown();
    await running;
  });
  beforeEach(() => {
    calls = [];
  });

  const person = (name: string, roles: Role[] = ['reviewer']): Actor => ({
    userId: `id-${name}`,
    username: name,
    printedName: name,
    roles,
  });
  const slot = (name: string): AssigneeRef => ({ kind: 'user', userId: `id-${name}`, username: name });
  const author = person('alice', ['author']);
  const control = person('dora', ['document_control']);

  async function start(routing: RoutingStage[], extra: Partial<DocumentApprovalInput> = {}) {
    const number = `DOC-${randomUUID().slice(0, 8).toUpperCase()}`;
    const input: DocumentApprovalInput = {
      documentId: `doc-${number}`,
      documentNumber: number,
      title: 'Pipette calibration',
      versionId: `ver-${number}`,
      version: 1,
      author: { userId: author.userId, username: author.username },
      contentHash: 'hash-1',
      routing,
      reminderBefore: '1h',
      periodicReview: '365d',
      submittedBy: author.userId,
      ...extra,
    };
    const handle = await testEnv().client.workflow.start<typeof documentApprovalWorkflow>('documentApprovalWorkflow', {
      workflowId: `document-approval:${number}:v1`,
      taskQueue,
      args: [input],
    });
    return handle;
  }
  const stage = (name: string, rule: RoutingStage['rule'], names: string[], due = '1h'): RoutingStage => ({
    name,
    rule,
    due,
    assignees: names.map(slot),
  });

  type Handle = WorkflowHandle<typeof documentApprovalWorkflow>;
  const stateOf = (handle: Handle) => handle.query(documentStateQuery);
  const until = (handle: Handle, what: string, check: (s: DocumentApprovalState) => boolean) =>
    waitFor(async () => {
      const s = await stateOf(handle);
      return check(s) ? s : null;
    }, what);
  const stageActive = (handle: Handle, index: number, round = 1) =>
    until(
      handle,
      `stage ${index} active in round ${round}`,
      (s) => s.round === round && s.currentStage === index && s.stages[index].status === 'active',
    );

  const signature = (contentHash = 'hash-1') => ({ meaning: 'approval', contentHash, signedAt: new Date().toISOString() });
  const approve = (handle: Handle, who: Actor, contentHash = 'hash-1') =>
    handle.executeUpdate(decideUpdate, { args: [{ grant: GRANT, actor: who, decision: 'approve', signature: signature(contentHash) }] });
  const decide = (handle: Handle, args: DecideArgs) => handle.executeUpdate(decideUpdate, { args: [args] });
  const names = () => calls.map((c) => c.name).filter((n) => n !== 'deliverEmails');

  async function refusal(action: Promise<unknown>): Promise<string> {
    const err = await action.then(
      () => assert.fail('the action was accepted'),
      (e: unknown) => e,
    );
    assert.ok(err instanceof WorkflowUpdateFailedError, String(err));
    assert.ok(err.cause instanceof ApplicationFailure, String(err.cause));
    return err.cause.type ?? '';
  }
  async function acceptedUpdates(handle: Handle): Promise<number> {
    const history = await handle.fetchHistory();
    return (history.events ?? []).filter((e) => e.workflowExecutionUpdateAcceptedEventAttributes).length;
  }

  it('routes through k-of-n, all and any stages to approval, waits for the effective date, then opens and completes periodic reviews', async () => {
    const handle = await start(
      [
        stage('Technical', { type: 'k_of_n', k: 2 }, ['rita', 'rick', 'rob']),
        stage('Safety', { type: 'all' }, ['sam', 'sue']),
        stage('QA', { type: 'any' }, ['quinn', 'quentin']),
      ],
      // Far enough ahead that every approval is in, and the run is seen waiting in 'approved', on a slow machine.
      { effectiveDate: new Date(Date.now() + 20_000).toISOString(), periodicReview: '4s' },
    );
    await stageActive(handle, 0);
    await approve(handle, person('rita'));
    const afterOne = await stateOf(handle);
    assert.equal(afterOne.currentStage, 0, 'one approval of two needed keeps the stage open');
    assert.deepEqual(afterOne.pendingAssignees, ['user:rick', 'user:rob']);
    await approve(handle, person('rick'));
    await stageActive(handle, 1);
    await approve(handle, person('sam'));
    assert.equal((await stateOf(handle)).currentStage, 1, '"all" waits for every assignee');
    await approve(handle, person('sue'));
    await stageActive(handle, 2);
    await approve(handle, person('quentin'));

    const approved = await until(handle, 'approved', (s) => s.state === 'approved');
    assert.equal(approved.dueAt, approved.effectiveDate, 'the effective date is what falls due next');
    assert.deepEqual(
      approved.stages.map((s) => s.status),
      ['approved', 'approved', 'approved'],
    );
    const effective = await until(handle, 'effective', (s) => s.state === 'effective');
    assert.ok(Date.parse(effective.effectiveAt ?? '') >= Date.parse(effective.effectiveDate ?? ''), 'not effective before its date');

    const open = await until(handle, 'periodic review open', (s) => s.periodicReviewOpen);
    assert.ok(names().includes('openPeriodicReview'), 'the run says the review is open only once its task was written');
    assert.deepEqual(open.pendingAssignees, ['role:document_control']);
    const reviewed = await handle.executeUpdate(completePeriodicReviewUpdate, {
      args: [{ grant: GRANT, actor: control, comment: 'Still accurate' }],
    });
    assert.equal(reviewed.periodicReviewOpen, false);
    assert.ok(Date.parse(reviewed.nextPeriodicReviewAt ?? '') > Date.parse(open.nextPeriodicReviewAt ?? ''));

    const obsolete = await handle.executeUpdate(obsoleteUpdate, { args: [{ grant: GRANT, actor: control, reason: 'Method retired' }] });
    assert.equal(obsolete.state, 'obsolete');
    assert.equal((await handle.result()).state, 'obsolete');
    assert.deepEqual(names(), [
      'openReviewStage',
      'recordDecision',
      'recordDecision',
      'closeReviewStage',
      'openReviewStage',
      'recordDecision',
      'recordDecision',
      'closeReviewStage',
      'openReviewStage',
      'recordDecision',
      'closeReviewStage',
      'closeVersion',
      'makeEffective',
      'openPeriodicReview',
      'completePeriodicReview',
      'acceptRequest',
      'closeVersion',
    ]);
    assert.deepEqual(
      calls.filter((c) => c.name === 'closeReviewStage').map((c) => c.args.outcome),
      ['approved', 'approved', 'approved'],
    );
    assert.ok(
      calls.some((c) => c.name === 'deliverEmails'),
      'the outbox emails the activities queued are delivered',
    );
  });

  it('starts a new round from the first stage when changes are requested and the author uploads a revision', async () => {
    const handle = await start([stage('Technical', { type: 'all' }, ['rita']), stage('QA', { type: 'any' }, ['quinn'])]);
    await stageActive(handle, 0);
    await approve(handle, person('rita'));
    await stageActive(handle, 1);
    await decide(handle, { grant: GRANT, actor: person('quinn'), decision: 'request_changes', comment: 'Section 4 is unclear' });
    const waiting = await until(handle, 'changes requested', (s) => s.state === 'changes_requested');
    assert.deepEqual(waiting.outcome, { by: 'quinn', comment: 'Section 4 is unclear' });
    assert.deepEqual(waiting.pendingAssignees, ['user:alice']);

    const revised = await handle.executeUpdate(uploadRevisionUpdate, { args: [{ grant: GRANT, actor: author, contentHash: 'hash-2' }] });
    assert.equal(revised.round, 2);
    assert.equal(revised.contentHash, 'hash-2');
    await stageActive(handle, 0, 2);
    const stale = await refusal(approve(handle, person('rita'), 'hash-1'));
    assert.equal(stale, FailureType.StaleContentHash, 'a signature over the old text is refused');
    await approve(handle, person('rita'), 'hash-2');
    await stageActive(handle, 1, 2);
    await approve(handle, person('quinn'), 'hash-2');
    await until(handle, 'effective', (s) => s.state === 'effective');
    assert.deepEqual(names(), [
      'openReviewStage',
      'recordDecision',
      'closeReviewStage',
      'openReviewStage',
      'recordDecision',
      'closeReviewStage',
      'requestRevision',
      'acceptRequest',
      'applyRevision',
      'openReviewStage',
      'recordDecision',
      'closeReviewStage',
      'openReviewStage',
      'recordDecision',
      'closeReviewStage',
      'closeVersion',
      'makeEffective',
    ]);
    assert.equal(calls.find((c) => c.name === 'applyRevision')?.args.round, 2);
    await handle.executeUpdate(obsoleteUpdate, { args: [{ grant: GRANT, actor: control, reason: 'end of test' }] });
  });

  it('ends rejected on one rejection, closing the stage without waiting for the others', async () => {
    const handle = await start([stage('Technical', { type: 'all' }, ['rita', 'rick']), stage('QA', { type: 'any' }, ['quinn'])]);
    await stageActive(handle, 0);
    await decide(handle, { grant: GRANT, actor: person('rick'), decision: 'reject', comment: 'Wrong method' });
    const result = await handle.result();
    assert.equal(result.state, 'rejected');
    assert.deepEqual(result.outcome, { by: 'rick', comment: 'Wrong method' });
    assert.deepEqual(names(), ['openReviewStage', 'recordDecision', 'closeReviewStage', 'closeVersion']);
    assert.deepEqual(calls.find((c) => c.name === 'closeVersion')?.args.state, 'rejected');
  });

  it('ends withdrawn when the author withdraws mid-review, cancelling the open stage', async () => {
    const handle = await start([stage('Technical', { type: 'any' }, ['rita'])]);
    await stageActive(handle, 0);
    const withdrawn = await handle.executeUpdate(withdrawUpdate, { args: [{ grant: GRANT, actor: author, reason: 'Wrong template' }] });
    assert.equal(withdrawn.state, 'withdrawn');
    assert.deepEqual(withdrawn.outcome, { by: 'alice', comment: 'Wrong template' });
    assert.equal((await handle.result()).stages[0].status, 'cancelled');
    assert.deepEqual(names(), ['openReviewStage', 'acceptRequest', 'closeReviewStage', 'closeVersion']);
  });

  it('refuses the author, a non-assignee, a duplicate decision and actions of another stage, leaving no trace in history', async () => {
    const handle = await start([stage('Technical', { type: 'all' }, ['rita', 'rick'])]);
    await stageActive(handle, 0);
    await approve(handle, person('rita'));
    const acceptedBefore = await acceptedUpdates(handle);
    assert.equal(await refusal(approve(handle, person('alice'))), FailureType.Forbidden);
    assert.equal(await refusal(approve(handle, person('tom'))), FailureType.NotAssignee);
    assert.equal(await refusal(approve(handle, person('rita'))), FailureType.DuplicateDecision);
    assert.equal(
      await refusal(handle.executeUpdate(uploadRevisionUpdate, { args: [{ grant: GRANT, actor: author, contentHash: 'hash-2' }] })),
      FailureType.WrongStage,
    );
    assert.equal(
      await refusal(handle.executeUpdate(completePeriodicReviewUpdate, { args: [{ grant: GRANT, actor: control, comment: 'too early' }] })),
      FailureType.WrongStage,
    );
    assert.equal(
      await refusal(
        handle.executeUpdate(withdrawUpdate, { args: [{ grant: GRANT, actor: person('rick'), reason: 'not mine to withdraw' }] }),
      ),
      FailureType.Forbidden,
    );
    assert.equal(await acceptedUpdates(handle), acceptedBefore, 'refused actions never entered the history');
    assert.equal(names().filter((n) => n === 'recordDecision').length, 1);
    await approve(handle, person('rick'));
    await until(handle, 'effective', (s) => s.state === 'effective');
    assert.equal(
      await refusal(handle.executeUpdate(withdrawUpdate, { args: [{ grant: GRANT, actor: author, reason: 'too late' }] })),
      FailureType.WrongStage,
    );
    await handle.executeUpdate(obsoleteUpdate, { args: [{ grant: GRANT, actor: control, reason: 'end of test' }] });
  });

  it('lets one person sign at most one stage per round: the validator refuses it, and a refusal by the recording step frees the slot', async () => {
    const handle = await start([
      stage('Technical', { type: 'any' }, ['quinn']),
      stage('Approval', { type: 'any' }, ['quinn', 'mallory', 'april']),
    ]);
    await stageActive(handle, 0);
    await approve(handle, person('quinn'));
    await stageActive(handle, 1);
    const acceptedBefore = await acceptedUpdates(handle);
    assert.equal(await refusal(approve(handle, person('quinn'))), FailureType.DuplicateDecision);
    assert.equal(
      await refusal(decide(handle, { grant: GRANT, actor: person('quinn'), decision: 'reject', comment: 'no' })),
      FailureType.DuplicateDecision,
    );
    assert.equal(await acceptedUpdates(handle), acceptedBefore, 'the refusals never entered the history');

    assert.equal(await refusal(approve(handle, person('mallory'))), FailureType.DuplicateDecision);
    const freed = await stateOf(handle);
    assert.equal(freed.stages[1].status, 'active');
    assert.ok(
      freed.stages[1].slots.every((s) => !s.decision),
      'the refused decision gave its slot back',
    );
    await approve(handle, person('april'));
    await until(handle, 'effective', (s) => s.state === 'effective');
    await handle.executeUpdate(obsoleteUpdate, { args: [{ grant: GRANT, actor: control, reason: 'end of test' }] });
  });

  it('reminds before the due date, escalates when overdue and keeps waiting; an extension re-arms both', async () => {
    const alarmsSent = (count: number) =>
      waitFor(() => {
        const sent = calls.filter((c) => c.name === 'remindStage');
        return sent.length >= count ? sent : null;
      }, `${count} reminders and escalations sent`);
    // Margins of seconds on every clock: a loaded machine may take a second or two to carry an Update.
    const handle = await start([stage('Technical', { type: 'all' }, ['rita', 'rick'], '8s')], { reminderBefore: '3s' });
    await stageActive(handle, 0);
    await approve(handle, person('rita'));
    const escalated = await until(handle, 'escalated', (s) => s.stages[0].escalated);
    assert.equal(escalated.state, 'in_review', 'an overdue stage waits for people; the clock never decides it');
    // The state says "escalated" as the run schedules the escalation; the activity itself runs a moment later.
    const alarms = await alarmsSent(2);
    assert.deepEqual(
      alarms.map((c) => c.args.kind),
      ['reminder', 'escalation'],
    );
    assert.deepEqual(
      alarms.map((c) => (c.args.pending as AssigneeRef[]).map((a) => (a.kind === 'user' ? a.username : a.role))),
      [['rick'], ['rick']],
      'only those who have not decided are chased',
    );

    const dueAt = new Date(Date.now() + 9000).toISOString();
    const extended = await handle.executeUpdate(extendDueUpdate, {
      args: [{ grant: GRANT, actor: control, dueAt, reason: 'Reviewer at an audit' }],
    });
    assert.equal(extended.stages[0].dueAt, dueAt);
    assert.equal(extended.stages[0].escalated, false);
    assert.equal(extended.stages[0].reminded, false, 'the reminder is re-armed: it falls after the extension');
    await until(handle, 'escalated again', (s) => s.stages[0].escalated);
    assert.deepEqual(
      (await alarmsSent(4)).map((c) => [c.args.kind, c.args.dueAt]),
      [
        ['reminder', escalated.stages[0].dueAt],
        ['escalation', escalated.stages[0].dueAt],
        ['reminder', dueAt],
        ['escalation', dueAt],
      ],
    );
    await approve(handle, person('rick'));
    await until(handle, 'effective', (s) => s.state === 'effective');
    await handle.executeUpdate(obsoleteUpdate, { args: [{ grant: GRANT, actor: control, reason: 'end of test' }] });
  });
});
