import assert from 'node:assert/strict';
import { WorkflowNotFoundError, WorkflowUpdateFailedError } from '@temporalio/client';
import { logAttemptUpdate } from '../../common/critical-calls';
import { startPlatform, type Platform } from '../helpers/platform';
import { makeUsers, type TestUser } from '../helpers/users';
import { testEnv } from '../setup/env';
import { register, tag } from '../sample-intake/support';
import { testCode } from '../results/support';
import { callInState, callUrl, enter, logAttempt, openedCall, routedWithProvider } from './support';

type Users = Record<'doc' | 'provider' | 'tech' | 'tech2' | 'director', TestUser>;
const people = () =>
  makeUsers({ doc: ['clinician'], provider: ['clinician'], tech: ['lab_technician'], tech2: ['lab_technician'], director: ['lab_director'] });

// The test's ranges: 3.5–5.5 mmol/L, critical below 2.5 and above 7.
describe('critical-value calls', function () {
  this.timeout(120_000);
  let p: Platform;
  let u: Users;
  before(async () => {
    // Two failed attempts call in the lab director; the deadline is far enough not to.
    p = await startPlatform({ activityDeps: { criticalCalls: { maxAttempts: 2, deadline: '10m' } } });
    u = await people();
  });
  after(() => p.stop());

  it('refuses an ordering provider who is unknown or not a clinician, and registers nothing', async () => {
    for (const [orderingProvider, type] of [
      ['nobody.here', 'unknown-ordering-provider'],
      [u.tech.username, 'ordering-provider-not-clinician'],
    ]) {
      const barcode = `BC-${tag()}`;
      const res = await p.api('POST', '/api/v1/samples', {
        key: u.doc.apiKey,
        body: { sampleType: 'SERUM', tests: ['TSH'], patient: { name: 'A B', mrn: 'M-1' }, barcode, orderingProvider },
      });
      assert.equal(res.status, 422);
      assert.equal(res.body.type.split(':').pop(), type);
      assert.equal((await testEnv().db('samples').where({ barcode }).first()) ?? null, null);
    }
    const { accession } = await register(p, u.doc, { orderingProvider: u.provider.username });
    assert.equal((await testEnv().db('samples').where({ accession }).first('ordering_provider_id')).ordering_provider_id, u.provider.actor.userId);
  });

  it('starts exactly one call for a critical result and none for a normal one', async () => {
    const [critical, normal] = [await testCode(), await testCode()];
    const accession = await routedWithProvider(p, u.doc, u.tech, [critical, normal], u.provider);
    const { client } = testEnv();
    await enter(p, u.tech, accession, normal, 4.2);
    await assert.rejects(client.workflow.getHandle(`critical-call:${accession}:${normal}`).describe(), WorkflowNotFoundError);
    await enter(p, u.tech, accession, critical, 8.4);
    // Edited, critical again: the call already running is joined, not started twice.
    await enter(p, u.tech, accession, critical, 8.6);
    const call = await openedCall(accession, critical);
    assert.equal(call.workflow_id, `critical-call:${accession}:${critical}`);
    assert.equal(call.flag, 'critical_high');
    assert.equal(call.ordering_provider_id, u.provider.actor.userId);
    const runs = [];
    for await (const run of client.workflow.list({ query: `WorkflowId = '${call.workflow_id}'` })) runs.push(run);
    assert.equal(runs.length, 1);
    assert.equal(Number((await testEnv().db('critical_calls').where({ accession }).count({ n: '*' }))[0].n), 1);
  });

  it('records a mismatched read-back as not confirmed, confirms a matching one, and applies a request ID once', async () => {
    const test = await testCode();
    const accession = await routedWithProvider(p, u.doc, u.tech, [test], u.provider);
    await enter(p, u.tech, accession, test, 1.8);
    const call = await openedCall(accession, test);
    assert.equal(call.flag, 'critical_low');

    const wrong = await logAttempt(p, u.tech, accession, test, { requestId: 'a-1', called: 'ordering_provider', outcome: 'CONFIRMED', readBack: '1.9' });
    assert.equal(wrong.status, 200, JSON.stringify(wrong.body));
    assert.deepEqual([wrong.body.attempt.outcome, wrong.body.attempt.reportedOutcome, wrong.body.attempt.readBackMatches], ['REACHED_NO_READBACK', 'CONFIRMED', false]);
    assert.equal((await testEnv().db('critical_calls').where({ id: call.id }).first('state')).state, 'calling');

    const right = await logAttempt(p, u.tech, accession, test, { requestId: 'a-2', called: 'ordering_provider', outcome: 'CONFIRMED', readBack: '1,80 mmol/L' });
    assert.equal(right.status, 200, JSON.stringify(right.body));
    assert.deepEqual([right.body.attempt.outcome, right.body.attempt.readBackMatches, right.body.attempt.called.kind], ['CONFIRMED', true, 'ordering_provider']);
    const notified = await callInState(accession, test, 'notified');
    assert.ok(notified.notified_at);

    const again = await logAttempt(p, u.tech, accession, test, { requestId: 'a-2', called: 'ordering_provider', outcome: 'CONFIRMED', readBack: '1.8' });
    assert.equal(again.status, 200);
    assert.equal(again.body.duplicate, true);
    assert.equal(again.body.attempt.seq, 2);
    const attempts = await testEnv().db('critical_call_attempts').where({ call_id: call.id }).orderBy('seq');
    assert.deepEqual(attempts.map((a) => [a.seq, a.outcome, a.called_by]), [
      [1, 'REACHED_NO_READBACK', u.tech.actor.userId],
      [2, 'CONFIRMED', u.tech.actor.userId],
    ]);
    assert.ok(attempts.every((a) => /^[A-Za-z0-9_-]{43}$/.test(a.grant_id)), 'each attempt keeps the grant that proved it');
    // A new attempt on a confirmed call is refused, nothing written.
    const late = await logAttempt(p, u.tech, accession, test, { requestId: 'a-3', called: 'ordering_provider', outcome: 'UNABLE_TO_REACH' });
    assert.equal(late.status, 409);
    assert.equal(Number((await testEnv().db('critical_call_attempts').where({ call_id: call.id }).count({ n: '*' }))[0].n), 2);
    // The run ended notified.
    const result = await testEnv().client.workflow.getHandle(call.workflow_id).result();
    assert.equal(result.state, 'notified');
  });

  it('keeps each attempt write-once: the application role cannot change or delete it', async () => {
    const test = await testCode();
    const accession = await routedWithProvider(p, u.doc, u.tech, [test], u.provider);
    await enter(p, u.tech, accession, test, 9);
    const call = await openedCall(accession, test);
    const res = await logAttempt(p, u.tech, accession, test, { requestId: 'w-1', called: { name: 'Dr Covering' }, outcome: 'UNABLE_TO_REACH' });
    assert.equal(res.status, 200, JSON.stringify(res.body));
    const app = testEnv().appDb;
    await assert.rejects(app('critical_call_attempts').where({ call_id: call.id }).update({ outcome: 'CONFIRMED' }));
    await assert.rejects(app('critical_call_attempts').where({ call_id: call.id }).del());
    const [row] = await testEnv().db('critical_call_attempts').where({ call_id: call.id });
    assert.deepEqual([row.outcome, row.called_kind, row.called_name], ['UNABLE_TO_REACH', 'other', 'Dr Covering']);
  });

  it('escalates to the lab director after the failed attempts the settings allow; the director may then confirm', async () => {
    const test = await testCode();
    const accession = await routedWithProvider(p, u.doc, u.tech, [test], u.provider);
    await enter(p, u.tech, accession, test, 7.5);
    const call = await openedCall(accession, test);
    for (const requestId of ['e-1', 'e-2']) {
      const res = await logAttempt(p, u.tech, accession, test, { requestId, called: 'ordering_provider', outcome: 'UNABLE_TO_REACH' });
      assert.equal(res.status, 200, JSON.stringify(res.body));
    }
    const escalated = await callInState(accession, test, 'escalated');
    assert.equal(escalated.escalation_reason, 'attempts');
    const notice = await testEnv().db('notices').where({ kind: 'critical_call.escalated', subject_id: call.workflow_id }).first();
    assert.equal(notice.priority, 'urgent');
    assert.ok(await testEnv().db('notice_recipients').where({ notice_id: notice.id, user_id: u.director.actor.userId }).first());
    const channels = await testEnv().db('notice_deliveries').where({ notice_id: notice.id, user_id: u.director.actor.userId }).pluck('channel');
    assert.ok(channels.includes('sms') && channels.includes('slack'), channels.join());

    const res = await logAttempt(p, u.director, accession, test, { requestId: 'e-3', called: { name: 'Dr On-call' }, outcome: 'CONFIRMED', readBack: '7.5' });
    assert.equal(res.status, 200, JSON.stringify(res.body));
    assert.equal(res.body.attempt.afterEscalation, true);
    await callInState(accession, test, 'notified');
  });

  it('escalates at once when the requisition names no ordering provider', async () => {
    const test = await testCode();
    const accession = await routedWithProvider(p, u.doc, u.tech, [test], null);
    await enter(p, u.tech, accession, test, 2.1);
    const escalated = await callInState(accession, test, 'escalated');
    assert.equal(escalated.escalation_reason, 'no_ordering_provider');
    const res = await logAttempt(p, u.tech, accession, test, { requestId: 'n-1', called: 'ordering_provider', outcome: 'UNABLE_TO_REACH' });
    assert.equal(res.status, 422);
    assert.equal(res.body.type.split(':').pop(), 'no-ordering-provider');
  });

  it('refuses an attempt on a result that is not critical, and writes nothing', async () => {
    const test = await testCode();
    const accession = await routedWithProvider(p, u.doc, u.tech2, [test], u.provider);
    await enter(p, u.tech2, accession, test, 4.4);
    const res = await logAttempt(p, u.tech2, accession, test, { requestId: 'x-1', called: 'ordering_provider', outcome: 'UNABLE_TO_REACH' });
    assert.equal(res.status, 422);
    assert.equal(res.body.type.split(':').pop(), 'result-not-critical');
    const { db } = testEnv();
    assert.equal((await db('critical_calls').where({ accession }).first()) ?? null, null);
    assert.equal(Number((await db('critical_call_requests').where({ requested_by: u.tech2.actor.userId }).count({ n: '*' }))[0].n), 0);
    assert.equal((await p.api('GET', callUrl(accession, test), { key: u.tech2.apiKey })).status, 422);
  });

  it('refuses, in the recording activity, an attempt sent to the run without valid proof', async () => {
    const test = await testCode();
    const accession = await routedWithProvider(p, u.doc, u.tech, [test], u.provider);
    await enter(p, u.tech, accession, test, 11);
    const call = await openedCall(accession, test);
    const { db, client } = testEnv();
    const [staged] = await db('critical_call_requests')
      .insert({ call_id: call.id, request_id: 'f-1', requested_by: u.tech.actor.userId, called_user_id: u.provider.actor.userId, reported_outcome: 'CONFIRMED', read_back: '11' })
      .returning('id');
    const forged = { actor: u.tech.actor, grant: 'g'.repeat(43), requestId: 'f-1', attemptRequestId: staged.id, outcome: 'CONFIRMED' as const };
    await assert.rejects(client.workflow.getHandle(call.workflow_id).executeUpdate(logAttemptUpdate, { args: [forged] }), (err: unknown) => {
      assert.ok(err instanceof WorkflowUpdateFailedError);
      assert.equal((err.cause as { type?: string }).type, 'GrantRefused');
      return true;
    });
    assert.equal(Number((await db('critical_call_attempts').where({ call_id: call.id }).count({ n: '*' }))[0].n), 0);
    assert.equal((await db('critical_calls').where({ id: call.id }).first('state')).state, 'calling');
    const refused = await db('audit_events').where({ entity_type: 'critical_call', entity_id: call.workflow_id, action: 'security.grant_refused' });
    assert.equal(refused.length, 1);
  });

  it('shows one call with its value and attempts as a logged PHI read, and lists open calls a keyset page at a time to the lab only', async () => {
    const test = await testCode();
    const accession = await routedWithProvider(p, u.doc, u.tech, [test], u.provider);
    await enter(p, u.tech, accession, test, 12.5);
    const call = await openedCall(accession, test);
    await logAttempt(p, u.tech, accession, test, { requestId: 'v-1', called: 'ordering_provider', outcome: 'REACHED_NO_READBACK', note: 'asked to call back' });
    // The attempt's answer (the attempt as recorded) is an access event too.
    const afterPost = await testEnv().db('phi_access_events').where({ user_id: u.tech.actor.userId, record_kind: 'critical_call' });
    assert.ok(afterPost.some((e) => JSON.stringify(e).includes(call.workflow_id)));
    const view = await p.api('GET', callUrl(accession, test), { key: u.tech.apiKey });
    assert.equal(view.status, 200, JSON.stringify(view.body));
    assert.deepEqual([view.body.result.value, view.body.result.flag, view.body.attemptLog.length], [12.5, 'critical_high', 1]);
    assert.equal(view.body.orderingProvider.username, u.provider.username);
    const access = await testEnv().db('phi_access_events').where({ user_id: u.tech.actor.userId, record_kind: 'critical_call' });
    assert.ok(access.some((e) => JSON.stringify(e).includes(call.workflow_id)));

    assert.equal((await p.api('GET', '/api/v1/critical-calls', { key: u.doc.apiKey })).status, 403);
    let cursor: string | null = null;
    let found = false;
    for (let page = 0; page < 500 && !found; page += 1) {
      const res = await p.api('GET', `/api/v1/critical-calls?limit=5${cursor ? `&cursor=${cursor}` : ''}`, { key: u.tech.apiKey });
      assert.equal(res.status, 200);
      assert.ok(res.body.items.every((c: { state: string }) => c.state !== 'notified'));
      assert.ok(res.body.items.every((c: Record<string, unknown>) => !('result' in c)));
      found = res.body.items.some((c: { workflowId: string }) => c.workflowId === call.workflow_id);
      cursor = res.body.nextCursor;
      if (!cursor) break;
    }
    assert.ok(found, 'the open call is listed');
  });
});

describe('critical-value calls: the time limit', function () {
  this.timeout(120_000);
  let p: Platform;
  let u: Users;
  before(async () => {
    p = await startPlatform({ activityDeps: { criticalCalls: { maxAttempts: 5, deadline: '3s' } } });
    u = await people();
  });
  after(() => p.stop());

  it('escalates to the lab director when nobody read the value back in time', async () => {
    const test = await testCode();
    const accession = await routedWithProvider(p, u.doc, u.tech, [test], u.provider);
    await enter(p, u.tech, accession, test, 1.2);
    const call = await openedCall(accession, test);
    const res = await logAttempt(p, u.tech, accession, test, { requestId: 't-1', called: 'ordering_provider', outcome: 'UNABLE_TO_REACH' });
    assert.equal(res.status, 200, JSON.stringify(res.body));
    const escalated = await callInState(accession, test, 'escalated');
    assert.equal(escalated.escalation_reason, 'deadline');
    assert.ok(await testEnv().db('notices').where({ kind: 'critical_call.escalated', subject_id: call.workflow_id }).first());
    const audit = await testEnv().db('audit_events').where({ entity_type: 'critical_call', entity_id: call.workflow_id }).orderBy('seq').pluck('action');
    assert.deepEqual([...audit].sort(), ['critical_call.attempt_logged', 'critical_call.escalated', 'critical_call.opened']);
  });
});
