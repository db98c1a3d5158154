import assert from 'node:assert/strict';
import { callInState, enter, logAttempt, routedWithProvider } from '../critical-calls/support';
import { startPlatform, type Platform } from '../helpers/platform';
import { makeUsers, type TestUser } from '../helpers/users';
import { testCode } from '../results/support';
import { testEnv } from '../setup/env';
import { getSample, register } from './support';

type Users = Record<'doc' | 'provider' | 'other' | 'tech' | 'director', TestUser>;

// The result test's ranges (test/results/support.ts): 3.5–5.5 mmol/L, critical below 2.5 and above 7.
describe('setting a registered sample’s ordering provider', function () {
  this.timeout(120_000);
  let p: Platform;
  let u: Users;
  before(async () => {
    p = await startPlatform({ activityDeps: { criticalCalls: { maxAttempts: 2, deadline: '10m' } } });
    u = await makeUsers({ doc: ['clinician'], provider: ['clinician'], other: ['clinician'], tech: ['lab_technician'], director: ['lab_director'] });
  });
  after(() => p.stop());

  const put = (accession: string, body: unknown, user = u.tech) =>
    p.api('PUT', `/api/v1/samples/${accession}/ordering-provider`, { key: user.apiKey, body });
  const providerOf = async (accession: string) =>
    (await testEnv().db('samples').where({ accession }).first('ordering_provider_id')).ordering_provider_id as string | null;
  const audits = (accession: string) =>
    testEnv().db('audit_events').where({ entity_type: 'sample', entity_id: accession, action: 'sample.ordering_provider_set' }).orderBy('seq');

  it('sets a provider on a sample registered without one, corrects it, audits the old and new value, and shows it', async () => {
    const { accession } = await register(p, u.doc);
    const set = await put(accession, { orderingProvider: u.provider.username, reason: 'Requisition named Dr Provider on paper' });
    assert.equal(set.status, 200, JSON.stringify(set.body));
    assert.deepEqual(
      [set.body.orderingProvider.username, set.body.previous, set.body.changed, set.body.criticalCalls],
      [u.provider.username, null, true, []],
    );
    assert.equal(await providerOf(accession), u.provider.actor.userId);
    assert.equal((await getSample(p, u.tech, accession)).orderingProvider.username, u.provider.username);

    const corrected = await put(accession, { orderingProvider: u.other.username, reason: 'Wrong physician keyed in' }, u.director);
    assert.equal(corrected.status, 200, JSON.stringify(corrected.body));
    assert.deepEqual(corrected.body.previous, { username: u.provider.username });
    assert.equal(await providerOf(accession), u.other.actor.userId);

    const [first, second] = await audits(accession);
    assert.deepEqual(first.details.from, null);
    assert.deepEqual(first.details.to, { id: u.provider.actor.userId, username: u.provider.username });
    assert.equal(first.actor, u.tech.username);
    assert.deepEqual(second.details.from, { id: u.provider.actor.userId, username: u.provider.username });
    assert.deepEqual(second.details.to, { id: u.other.actor.userId, username: u.other.username });
    assert.equal(second.details.reason, 'Wrong physician keyed in');
    assert.equal(second.actor, u.director.username);

    // The same provider again changes nothing and writes nothing.
    const same = await put(accession, { orderingProvider: u.other.username, reason: 'again' });
    assert.equal(same.status, 200);
    assert.equal(same.body.changed, false);
    assert.equal((await audits(accession)).length, 2);
  });

  it('answers 404 for an unknown sample, 422 for a provider unknown or not a clinician, 400 without a reason and 403 to a clinician, writing nothing', async () => {
    assert.equal((await put('ACC-99999999', { orderingProvider: u.provider.username, reason: 'x' })).status, 404);
    const { accession } = await register(p, u.doc, { orderingProvider: u.provider.username });
    for (const [orderingProvider, type] of [
      ['nobody.here', 'unknown-ordering-provider'],
      [u.tech.username, 'ordering-provider-not-clinician'],
    ]) {
      const res = await put(accession, { orderingProvider, reason: 'Correction' });
      assert.equal(res.status, 422);
      assert.equal(res.body.type, `urn:labflow:problem:${type}`);
      assert.equal(res.body.errors[0].field, 'body.orderingProvider');
    }
    const noReason = await put(accession, { orderingProvider: u.other.username });
    assert.equal(noReason.status, 400);
    assert.equal(noReason.body.errors[0].field, 'body.reason');
    assert.equal((await put(accession, { orderingProvider: u.other.username, reason: 'mine' }, u.doc)).status, 403);
    assert.equal(await providerOf(accession), u.provider.actor.userId);
    assert.equal((await audits(accession)).length, 0);
  });

  it('gives an open call escalated for want of a provider the provider, so that they can be called; refused once a call is confirmed', async () => {
    const test = await testCode();
    const accession = await routedWithProvider(p, u.doc, u.tech, [test], null);
    await enter(p, u.tech, accession, test, 2.1);
    const escalated = await callInState(accession, test, 'escalated');
    assert.equal(escalated.escalation_reason, 'no_ordering_provider');

    const set = await put(accession, { orderingProvider: u.provider.username, reason: 'Ward named the ordering physician' });
    assert.equal(set.status, 200, JSON.stringify(set.body));
    assert.deepEqual(set.body.criticalCalls, [escalated.workflow_id]);
    const call = await testEnv().db('critical_calls').where({ id: escalated.id }).first('ordering_provider_id', 'state');
    assert.deepEqual([call.ordering_provider_id, call.state], [u.provider.actor.userId, 'escalated']);
    const callAudit = await testEnv()
      .db('audit_events')
      .where({ entity_type: 'critical_call', entity_id: escalated.workflow_id, action: 'critical_call.ordering_provider_set' })
      .first('details');
    assert.deepEqual([callAudit.details.from, callAudit.details.to], [null, u.provider.actor.userId]);

    // Before, an attempt to "the ordering provider" was refused (422 no-ordering-provider); now it reaches them.
    const res = await logAttempt(p, u.tech, accession, test, { requestId: 'op-1', called: 'ordering_provider', outcome: 'CONFIRMED', readBack: '2.1' });
    assert.equal(res.status, 200, JSON.stringify(res.body));
    assert.equal(res.body.attempt.called.kind, 'ordering_provider');
    assert.equal(res.body.attempt.called.name, u.provider.actor.printedName);
    await callInState(accession, test, 'notified');

    const refused = await put(accession, { orderingProvider: u.other.username, reason: 'Too late' });
    assert.equal(refused.status, 409);
    assert.equal(refused.body.type, 'urn:labflow:problem:critical-call-confirmed');
    assert.equal(await providerOf(accession), u.provider.actor.userId);
    assert.equal((await audits(accession)).length, 1);
  });

  it('a call opened after the provider was set calls them and does not escalate at once', async () => {
    const test = await testCode();
    const accession = await routedWithProvider(p, u.doc, u.tech, [test], null);
    assert.equal((await put(accession, { orderingProvider: u.provider.username, reason: 'Added from the paper requisition' })).status, 200);
    await enter(p, u.tech, accession, test, 9.9);
    const call = await callInState(accession, test, 'calling');
    assert.equal(call.ordering_provider_id, u.provider.actor.userId);
    assert.equal(call.escalation_reason, null);
  });
});
