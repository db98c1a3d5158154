import assert from 'node:assert/strict';
import type { CriticalCallState } from '../../common/critical-calls';
import { startPlatform, type Platform } from '../helpers/platform';
import { makeUsers, type TestUser } from '../helpers/users';
import { waitFor } from '../helpers/wait';
import { testEnv } from '../setup/env';
import { mustAct } from '../sample-intake/support';
import { mustAnalysisAct, testCode } from '../results/support';
import { callInState, callUrl, enter, logAttempt, openedCall, routedWithProvider } from './support';

type Users = Record<'doc' | 'provider' | 'tech' | 'director', TestUser>;
const people = () => makeUsers({ doc: ['clinician'], provider: ['clinician'], tech: ['lab_technician'], director: ['lab_director'] });

const callsOf = (accession: string, test: string) => testEnv().db('critical_calls').where({ accession, test_code: test }).orderBy('call_number');
const count = async (table: string, where: Record<string, unknown>) => Number((await testEnv().db(table).where(where).count({ n: '*' }))[0].n);
const runResult = (workflowId: string) => testEnv().client.workflow.getHandle(workflowId).result() as Promise<CriticalCallState>;
const auditOf = (workflowId: string) =>
  testEnv().db('audit_events').where({ entity_type: 'critical_call', entity_id: workflowId }).orderBy('seq').select('action', 'details', 'actor_id');
/** The activities a run scheduled, by name, from its history. */
async function activitiesOf(workflowId: string): Promise<string[]> {
  const history = await testEnv().client.workflow.getHandle(workflowId).fetchHistory();
  return (history.events ?? []).flatMap((e) => e.activityTaskScheduledEventAttributes?.activityType?.name ?? []);
}

// The test's ranges: 3.5–5.5 mmol/L, critical below 2.5 and above 7.
describe('critical-value calls are withdrawn when the value stops being critical', function () {
  this.timeout(120_000);
  let p: Platform;
  let u: Users;
  before(async () => {
    p = await startPlatform({ activityDeps: { criticalCalls: { maxAttempts: 2, deadline: '10m' } } });
    u = await people();
  });
  after(() => p.stop());

  it('withdraws the open call when the result is edited to a value that is not critical, and tells whoever reached someone', async () => {
    const test = await testCode();
    const accession = await routedWithProvider(p, u.doc, u.tech, [test], u.provider);
    await enter(p, u.tech, accession, test, 8.4);
    const call = await openedCall(accession, test);
    const reached = await logAttempt(p, u.tech, accession, test, { requestId: 'r-1', called: 'ordering_provider', outcome: 'REACHED_NO_READBACK', note: 'nurse took it' });
    assert.equal(reached.status, 200, JSON.stringify(reached.body));

    await enter(p, u.tech, accession, test, 4.2);
    const withdrawn = await callInState(accession, test, 'withdrawn');
    assert.equal(withdrawn.withdrawal_reason, 'not_critical');
    assert.equal(withdrawn.withdrawn_by, u.tech.actor.userId);
    assert.ok(withdrawn.withdrawn_at);
    assert.equal((await runResult(call.workflow_id)).state, 'withdrawn');

    const audit = await auditOf(call.workflow_id);
    const event = audit.find((e) => e.action === 'critical_call.withdrawn');
    assert.ok(event, audit.map((e) => e.action).join());
    assert.equal(event.actor_id, u.tech.actor.userId);
    assert.deepEqual([event.details.reason, event.details.attempts, event.details.reached, event.details.escalated], ['not_critical', 1, 1, false]);

    // The attempt reached someone: who logged it and the lab directors are told, urgently, to call back.
    const notice = await waitFor(() => testEnv().db('notices').where({ kind: 'critical_call.withdrawn', subject_id: call.workflow_id }).first(), 'the withdrawal notice');
    assert.equal(notice.priority, 'urgent');
    const told = await testEnv().db('notice_recipients').where({ notice_id: notice.id }).pluck('user_id');
    assert.ok(told.includes(u.tech.actor.userId) && told.includes(u.director.actor.userId), told.join());
    assert.ok(!JSON.stringify(notice.facts).includes('8.4'));

    const view = await p.api('GET', callUrl(accession, test), { key: u.tech.apiKey });
    assert.equal(view.status, 200, JSON.stringify(view.body));
    assert.deepEqual([view.body.state, view.body.withdrawalReason, view.body.callNumber, view.body.attemptLog.length], ['withdrawn', 'not_critical', 1, 1]);
    assert.ok(view.body.withdrawnAt);
  });

  it('refuses an attempt on a withdrawn call with 409 critical-call-withdrawn, and writes nothing', async () => {
    const test = await testCode();
    const accession = await routedWithProvider(p, u.doc, u.tech, [test], u.provider);
    await enter(p, u.tech, accession, test, 1.9);
    const call = await openedCall(accession, test);
    await enter(p, u.tech, accession, test, 3.9);
    await callInState(accession, test, 'withdrawn');
    const before = { requests: await count('critical_call_requests', { call_id: call.id }), attempts: await count('critical_call_attempts', { call_id: call.id }) };
    const res = await logAttempt(p, u.tech, accession, test, { requestId: 'w-1', called: 'ordering_provider', outcome: 'UNABLE_TO_REACH' });
    assert.equal(res.status, 409, JSON.stringify(res.body));
    assert.equal(res.body.type.split(':').pop(), 'critical-call-withdrawn');
    assert.deepEqual(
      { requests: await count('critical_call_requests', { call_id: call.id }), attempts: await count('critical_call_attempts', { call_id: call.id }) },
      before,
    );
    assert.deepEqual(before, { requests: 0, attempts: 0 });
  });

  it('withdraws the open call when the result is retracted, rejected or cancelled', async () => {
    const tests = { retract: await testCode(), reject: await testCode(), cancel: await testCode() };
    const accession = await routedWithProvider(p, u.doc, u.tech, Object.values(tests), u.provider);
    for (const [action, test] of Object.entries(tests)) {
      await enter(p, u.tech, accession, test, 12);
      await openedCall(accession, test);
      if (action === 'reject') await mustAnalysisAct(p, u.tech, accession, test, 'submit');
      await mustAnalysisAct(p, u.tech, accession, test, action, { reason: `${action} for the test` });
    }
    for (const [action, test] of Object.entries(tests)) {
      const row = await callInState(accession, test, 'withdrawn');
      assert.equal(row.withdrawal_reason, { retract: 'retracted', reject: 'rejected', cancel: 'cancelled' }[action]);
      assert.equal((await runResult(row.workflow_id)).state, 'withdrawn');
    }
    // A withdrawn call is listed under its state, never among the open ones.
    const listed = await p.api('GET', '/api/v1/critical-calls?state=withdrawn&limit=200', { key: u.tech.apiKey });
    assert.equal(listed.status, 200, JSON.stringify(listed.body));
    assert.ok(listed.body.items.every((c: { state: string }) => c.state === 'withdrawn'));
    const open = await p.api('GET', '/api/v1/critical-calls?limit=200', { key: u.tech.apiKey });
    const ids = Object.values(tests).map((t) => `critical-call:${accession}:${t}`);
    assert.ok(!open.body.items.some((c: { workflowId: string }) => ids.includes(c.workflowId)));
  });

  it('withdraws the call of an analysis cancelled with its rejected specimen', async () => {
    const test = await testCode();
    const accession = await routedWithProvider(p, u.doc, u.tech, [test], u.provider);
    await enter(p, u.tech, accession, test, 1.1);
    const call = await openedCall(accession, test);
    await mustAct(p, u.tech, accession, 'reject', { code: 'RB', condition: 'Tube cracked in transit', disposition: 'discarded' });
    const row = await callInState(accession, test, 'withdrawn');
    assert.equal(row.withdrawal_reason, 'cancelled');
    assert.equal((await runResult(call.workflow_id)).state, 'withdrawn');
  });

  it('keeps the call of a retested value reachable until its retest reports, then withdraws it (retested); a critical retest opens its own call', async () => {
    const [calm, again] = [await testCode(), await testCode()];
    const accession = await routedWithProvider(p, u.doc, u.tech, [calm, again], u.provider);
    const originals: Record<string, string> = {};
    for (const test of [calm, again]) {
      await enter(p, u.tech, accession, test, 9.5);
      originals[test] = (await openedCall(accession, test)).workflow_id;
      await mustAnalysisAct(p, u.tech, accession, test, 'submit');
      await mustAnalysisAct(p, u.tech, accession, test, 'retest');
    }
    // The retest has no result yet: the original's call is the one the lab makes, with the original's value.
    const view = await p.api('GET', callUrl(accession, calm), { key: u.tech.apiKey });
    assert.equal(view.status, 200, JSON.stringify(view.body));
    assert.deepEqual([view.body.workflowId, view.body.result.value], [originals[calm], 9.5]);
    const tried = await logAttempt(p, u.tech, accession, calm, { requestId: 'rt-1', called: 'ordering_provider', outcome: 'UNABLE_TO_REACH' });
    assert.equal(tried.status, 200, JSON.stringify(tried.body));

    await enter(p, u.tech, accession, calm, 4.4);
    await enter(p, u.tech, accession, again, 9.9);
    const callOf = (workflowId: string) => testEnv().db('critical_calls').where({ workflow_id: workflowId }).first();
    for (const test of [calm, again]) {
      const row = await waitFor(async () => ((await callOf(originals[test]))?.state === 'withdrawn' ? callOf(originals[test]) : undefined), `${originals[test]} withdrawn`);
      assert.equal(row.withdrawal_reason, 'retested');
      assert.equal((await runResult(originals[test])).state, 'withdrawn');
    }
    // The critical retest is called with its own value; the calm one has no call.
    const retestCall = await waitFor(() => testEnv().db('critical_calls').where({ accession, test_code: again }).whereNot({ workflow_id: originals[again] }).first(), 'the retest\'s call');
    assert.equal(retestCall.workflow_id, `critical-call:${accession}:${again}:2`);
    const retestView = await p.api('GET', callUrl(accession, again), { key: u.tech.apiKey });
    assert.deepEqual([retestView.body.workflowId, retestView.body.result.value, retestView.body.state], [retestCall.workflow_id, 9.9, 'calling']);
    assert.equal((await testEnv().db('critical_calls').where({ accession, test_code: calm })).length, 1);
  });

  it('opens a new call, with its own workflow ID, when the value is critical again after a withdrawal', async () => {
    const test = await testCode();
    const accession = await routedWithProvider(p, u.doc, u.tech, [test], u.provider);
    await enter(p, u.tech, accession, test, 8.1);
    const first = await openedCall(accession, test);
    await enter(p, u.tech, accession, test, 5.0);
    await enter(p, u.tech, accession, test, 9.3);
    const calls = await waitFor(async () => {
      const rows = await callsOf(accession, test);
      return rows.length === 2 ? rows : undefined;
    }, 'the second call');
    assert.deepEqual(
      calls.map((c) => [c.call_number, c.workflow_id, c.state]),
      [
        [1, first.workflow_id, 'withdrawn'],
        [2, `critical-call:${accession}:${test}:call-2`, 'calling'],
      ],
    );
    assert.equal((await runResult(first.workflow_id)).state, 'withdrawn');
    const second = await testEnv().client.workflow.getHandle(calls[1].workflow_id).describe();
    assert.equal(second.status.name, 'RUNNING');
    // The new call is the one attempts go to, and it confirms with the new value.
    const res = await logAttempt(p, u.tech, accession, test, { requestId: 'n-1', called: 'ordering_provider', outcome: 'CONFIRMED', readBack: '9.3' });
    assert.equal(res.status, 200, JSON.stringify(res.body));
    assert.deepEqual([res.body.call.workflowId, res.body.attempt.outcome], [calls[1].workflow_id, 'CONFIRMED']);
    assert.equal((await runResult(calls[1].workflow_id)).state, 'notified');
  });

  it('never withdraws a confirmed call; a later critical value opens a new call only when it differs from the one read back', async () => {
    const test = await testCode();
    const accession = await routedWithProvider(p, u.doc, u.tech, [test], u.provider);
    await enter(p, u.tech, accession, test, 7.7);
    const call = await openedCall(accession, test);
    const res = await logAttempt(p, u.tech, accession, test, { requestId: 'c-1', called: 'ordering_provider', outcome: 'CONFIRMED', readBack: '7.7' });
    assert.equal(res.status, 200, JSON.stringify(res.body));
    await callInState(accession, test, 'notified');
    await enter(p, u.tech, accession, test, 4.0);
    await enter(p, u.tech, accession, test, 7.7);
    let rows = await callsOf(accession, test);
    assert.deepEqual(rows.map((c) => [c.call_number, c.state]), [[1, 'notified']]);
    assert.equal((await auditOf(call.workflow_id)).filter((e) => e.action === 'critical_call.withdrawn').length, 0);
    await enter(p, u.tech, accession, test, 7.9);
    rows = await waitFor(async () => {
      const found = await callsOf(accession, test);
      return found.length === 2 ? found : undefined;
    }, 'the call of the new value');
    assert.deepEqual(rows.map((c) => [c.call_number, c.state]), [
      [1, 'notified'],
      [2, 'calling'],
    ]);
  });

  it('withdraws an escalated call and tells the lab directors, at normal priority, that no further call is needed', async () => {
    const test = await testCode();
    const accession = await routedWithProvider(p, u.doc, u.tech, [test], null);
    await enter(p, u.tech, accession, test, 2.2);
    const call = await callInState(accession, test, 'escalated');
    await mustAnalysisAct(p, u.tech, accession, test, 'retract', { reason: 'wrong patient' });
    const row = await callInState(accession, test, 'withdrawn');
    assert.equal(row.escalation_reason, 'no_ordering_provider');
    assert.equal((await runResult(call.workflow_id)).state, 'withdrawn');
    const notice = await waitFor(() => testEnv().db('notices').where({ kind: 'critical_call.withdrawn', subject_id: call.workflow_id }).first(), 'the withdrawal notice');
    assert.equal(notice.priority, 'normal');
    const told = await testEnv().db('notice_recipients').where({ notice_id: notice.id }).pluck('user_id');
    assert.ok(told.includes(u.director.actor.userId));
    assert.ok(!told.includes(u.tech.actor.userId));
  });
});

describe('critical-value calls: no escalation after a withdrawal', function () {
  this.timeout(120_000);
  let p: Platform;
  let u: Users;
  before(async () => {
    // Long enough that the withdrawing entry is in before the deadline on a slow machine, short enough to wait out.
    p = await startPlatform({ activityDeps: { criticalCalls: { maxAttempts: 1, deadline: '15s' } } });
    u = await people();
  });
  after(() => p.stop());

  it('stops the deadline: a call withdrawn before it is never escalated, and its run ends', async () => {
    const test = await testCode();
    const accession = await routedWithProvider(p, u.doc, u.tech, [test], u.provider);
    await enter(p, u.tech, accession, test, 1.3);
    const call = await openedCall(accession, test);
    await enter(p, u.tech, accession, test, 4.1);
    assert.equal((await runResult(call.workflow_id)).state, 'withdrawn');
    // Past the deadline, the record still shows the call withdrawn and never escalated.
    await waitFor(async () => (await testEnv().db.raw('select now() > ?::timestamptz as past', [call.deadline_at])).rows[0].past, 'the deadline passed');
    const row = await testEnv().db('critical_calls').where({ id: call.id }).first();
    assert.deepEqual([row.state, row.escalated_at, row.escalation_reason], ['withdrawn', null, null]);
    assert.equal(await count('notices', { kind: 'critical_call.escalated', subject_id: call.workflow_id }), 0);
    assert.ok(!(await activitiesOf(call.workflow_id)).includes('escalateCriticalCall'));
    assert.ok((await activitiesOf(call.workflow_id)).includes('criticalCallWithdrawal'));
  });
});
