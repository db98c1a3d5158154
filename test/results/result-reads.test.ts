import assert from 'node:assert/strict';
import { makeUser } from '../helpers/users';
import { testEnv } from '../setup/env';
import { analysisUrl, labPlatform, mustAnalysisAct, testCode } from './support';
import { patientOf, routedFor } from './rules-support';

const eventsOf = (userId: string) =>
  testEnv().db('phi_access_events').where({ user_id: userId }).orderBy('occurred_at').select('record_kind', 'record_ids', 'outcome', 'method', 'route');

describe('results: every read of a result value is a PHI access event', function () {
  this.timeout(120_000);
  const lab = labPlatform();

  it('logs the list and the single analysis read, with the route pattern and the analyses shown; a refused read discloses nothing and is logged', async () => {
    const { p, u } = lab;
    const test = await testCode();
    const accession = await routedFor(p, u.doc, u.tech, [test], patientOf());
    await mustAnalysisAct(p, u.tech, accession, test, 'result', { kind: 'numeric', value: 4.4, unit: 'mmol/L', performedBy: 'bench 1' });
    assert.equal((await p.api('GET', `/api/v1/samples/${accession}/analyses`, { key: u.doc.apiKey })).status, 200);
    assert.equal((await p.api('GET', analysisUrl(accession, test), { key: u.tech2.apiKey })).status, 200);
    const workflowId = `analysis:${accession}:${test}`;
    assert.deepEqual(await eventsOf(u.doc.actor.userId), [
      { record_kind: 'analysis_list', record_ids: [workflowId], outcome: 'read', method: 'GET', route: '/api/v1/samples/:accession/analyses' },
    ]);
    assert.deepEqual(await eventsOf(u.tech2.actor.userId), [
      { record_kind: 'analysis', record_ids: [workflowId], outcome: 'read', method: 'GET', route: '/api/v1/samples/:accession/analyses/:test' },
    ]);
    // Another clinician may not read it: the refusal discloses nothing and is logged as a denied access.
    const stranger = await makeUser('other', ['clinician']);
    const refused = await p.api('GET', analysisUrl(accession, test), { key: stranger.apiKey });
    assert.equal(refused.status, 403);
    assert.equal(refused.body.result, undefined);
    // Nor learn which tests the sample has: a test it does not have is refused alike (403, not 404), and logged.
    const notOrdered = await p.api('GET', analysisUrl(accession, 'NOT-ORDERED'), { key: stranger.apiKey });
    assert.equal(notOrdered.status, 403);
    assert.deepEqual(await eventsOf(stranger.actor.userId), [
      { record_kind: 'analysis', record_ids: [workflowId], outcome: 'denied', method: 'GET', route: '/api/v1/samples/:accession/analyses/:test' },
      { record_kind: 'analysis', record_ids: [], outcome: 'denied', method: 'GET', route: '/api/v1/samples/:accession/analyses/:test' },
    ]);
    // The lab is told it is not there.
    assert.equal((await p.api('GET', analysisUrl(accession, 'NOT-ORDERED'), { key: u.tech2.apiKey })).status, 404);
  });
});
