import assert from 'node:assert/strict';
import { driftsFrom, responseRecorder } from '../helpers/openapi-conformance';
import { startPlatform, type Platform } from '../helpers/platform';
import { makeUsers, type TestUser } from '../helpers/users';
import { analysisAct, routedSample, sign, testCode } from './support';

/** The results routes answer what the OpenAPI document declares, successes and refusals alike. */
describe('the results routes answer what their OpenAPI operations declare', function () {
  this.timeout(120_000);
  const recorder = responseRecorder();
  let p: Platform;
  let u: Record<'doc' | 'tech' | 'tech2' | 'director', TestUser>;
  before(async () => {
    p = await startPlatform({ onResponse: recorder.middleware });
    u = await makeUsers({ doc: ['clinician'], tech: ['lab_technician'], tech2: ['lab_technician'], director: ['lab_director'] });
  });
  after(() => p?.stop());

  it('from entry to release, with a retest, a cancellation and the refusals on the way', async () => {
    const doc = (await p.api('GET', '/api/v1/openapi.json')).body;
    const [test, other] = [await testCode(), await testCode({ kind: 'coded' })];
    const accession = await routedSample(p, u.doc, u.tech, [test, other]);
    const start = recorder.exchanges.length;
    const expect = async (res: Promise<{ status: number; body: unknown }>, status: number) => {
      const answer = await res;
      assert.equal(answer.status, status, JSON.stringify(answer.body));
    };
    const value = { kind: 'numeric', value: 4, unit: 'mmol/L', performedBy: 'bench 1' };
    await expect(analysisAct(p, u.tech, accession, test, 'result', { ...value, unit: 'g/L' }), 422);
    await expect(analysisAct(p, u.tech, accession, test, 'result', value), 200);
    await expect(analysisAct(p, u.tech, accession, test, 'submit'), 200);
    await expect(sign(p, u.tech, accession, test, 'verify'), 403);
    await expect(sign(p, u.tech2, accession, test, 'verify'), 200);
    await expect(sign(p, u.director, accession, test, 'release'), 200);
    await expect(analysisAct(p, u.tech, accession, test, 'retract', { reason: 'late' }), 409);
    await expect(analysisAct(p, u.tech, accession, other, 'result', { kind: 'coded', code: 'positive', performedBy: 'bench 2' }), 200);
    await expect(analysisAct(p, u.tech, accession, other, 'retest'), 200);
    await expect(analysisAct(p, u.tech, accession, other, 'reject', { reason: 'pending' }), 409);
    await expect(analysisAct(p, u.tech, accession, other, 'cancel', { reason: 'ordered in error' }), 200);
    await expect(p.api('GET', `/api/v1/samples/${accession}/analyses`, { key: u.doc.apiKey }), 200);
    await expect(p.api('GET', `/api/v1/samples/${accession}/analyses/${test}`, { key: u.doc.apiKey }), 200);
    await expect(p.api('GET', `/api/v1/samples/${accession}/analyses/NOSUCH`, { key: u.doc.apiKey }), 404);
    const { drifts, checked } = driftsFrom(doc, recorder.exchanges.slice(start));
    assert.deepEqual(drifts, [], 'answers that differ from the document');
    assert.ok(checked.size >= 12, `${checked.size} operation and status pairs checked: ${[...checked].join(', ')}`);
  });
});
