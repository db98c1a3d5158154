import assert from 'node:assert/strict';
import { waitFor } from '../helpers/wait';
import { testEnv } from '../setup/env';
import {
  addRanges,
  analysisAct,
  labPlatform,
  mustAnalysisAct,
  readAnalysis,
  refusedVerifications,
  routedSample,
  sign,
  testCode,
} from './support';

const problem = (type: string) => `urn:labflow:problem:${type}`;
const TSH = { kind: 'numeric', value: 6.2, unit: 'mmol/L', performedBy: 'bench 3', instrument: 'COBAS-E411-02' } as const;

describe('results: a routed test from entry through verification to release', function () {
  this.timeout(120_000);
  const lab = labPlatform();

  it('starts one analysis run per routed test, enters, edits, flags, verifies by another person and releases', async () => {
    const { p, u } = lab;
    const [test, other] = [await testCode(), await testCode({ kind: 'text' })];
    const accession = await routedSample(p, u.doc, u.tech, [test, other]);
    const listed = (await p.api('GET', `/api/v1/samples/${accession}/analyses`, { key: u.doc.apiKey })).body.items;
    assert.deepEqual(
      listed.map((a: { workflowId: string; state: string }) => `${a.workflowId}:${a.state}`).sort(),
      [`analysis:${accession}:${other}:pending`, `analysis:${accession}:${test}:pending`].sort(),
    );

    const high = await mustAnalysisAct(p, u.tech, accession, test, 'result', TSH);
    assert.equal(high.state, 'resulted');
    assert.equal(high.result.value, 6.2);
    assert.equal(high.result.flag, 'high');
    assert.equal(high.result.instrument, 'COBAS-E411-02');
    assert.deepEqual([high.result.referenceRange.version, high.result.referenceRange.low, high.result.referenceRange.high], [1, 3.5, 5.5]);
    // An edit before submission: the new value is current and judged again.
    const edited = await mustAnalysisAct(p, u.tech2, accession, test, 'result', { ...TSH, value: 4.1 });
    assert.equal(edited.result.flag, 'normal');
    assert.equal((await mustAnalysisAct(p, u.tech, accession, test, 'submit')).state, 'to_be_verified');

    // The enterer and the editor may not verify; each refusal names its rule and is in the audit trail.
    for (const who of [u.tech, u.tech2]) {
      const refused = await sign(p, who, accession, test, 'verify');
      assert.equal(refused.status, 403, JSON.stringify(refused.body));
      assert.equal(refused.body.type, problem('verification-refused'));
      assert.equal(refused.body.rule, 'self-verification');
    }
    const workflowId = `analysis:${accession}:${test}`;
    assert.deepEqual(
      (await refusedVerifications(workflowId)).map((r) => `${r.actor}:${r.details.rule}`),
      [`${u.tech.username}:self-verification`, `${u.tech2.username}:self-verification`],
    );
    // Release before verification is refused.
    assert.equal((await sign(p, u.director, accession, test, 'release')).status, 409);

    const verified = await sign(p, u.tech3, accession, test, 'verify');
    assert.equal(verified.status, 200, JSON.stringify(verified.body));
    assert.equal(verified.body.state, 'verified');
    assert.deepEqual(
      verified.body.verifications.map((v: { username: string; meaning: string }) => `${v.username}:${v.meaning}`),
      [`${u.tech3.username}:verification`],
    );
    // A technician does not release; the lab director does, with a signature.
    assert.equal((await sign(p, u.tech3, accession, test, 'release')).status, 403);
    const released = await sign(p, u.director, accession, test, 'release');
    assert.equal(released.status, 200, JSON.stringify(released.body));
    assert.equal(released.body.state, 'released');
    const late = await analysisAct(p, u.tech, accession, test, 'result', TSH);
    assert.equal(late.status, 409);
    assert.equal(late.body.type, problem('analysis-released'));

    // A new version of the range does not change the snapshot the result was judged against.
    await addRanges(test, 'mmol/L', [{ version: 2, low: 4.5, high: 6 }]);
    const after = await readAnalysis(p, u.doc, accession, test);
    assert.deepEqual([after.result.referenceRange.version, after.result.referenceRange.low, after.result.flag], [1, 3.5, 'normal']);
    // The run ends once it has told the sample's run (a signal after its last action).
    await waitFor(async () => (await testEnv().client.workflow.getHandle(workflowId).describe()).status.name === 'COMPLETED', 'the run ended');
  });

  it('refuses a value of the wrong kind, unit or code, and a result for a cancelled test, writing nothing', async () => {
    const { p, u } = lab;
    const [numeric, coded] = [await testCode(), await testCode({ kind: 'coded', codes: ['positive', 'negative'] })];
    const accession = await routedSample(p, u.doc, u.tech, [numeric, coded]);
    const entries = async () => Number((await testEnv().db('analysis_entries as e').join('analyses as a', 'a.id', 'e.analysis_id').where('a.accession', accession).count({ n: '*' }))[0].n);

    const refusals: [string, unknown, number, string][] = [
      [numeric, { kind: 'coded', code: 'positive', performedBy: 'x' }, 422, 'wrong-result-kind'],
      [numeric, { ...TSH, unit: 'mg/dL' }, 422, 'wrong-unit'],
      [coded, { kind: 'coded', code: 'maybe', performedBy: 'x' }, 422, 'unknown-code'],
      [numeric, { ...TSH, value: 'high' }, 400, 'validation'],
    ];
    for (const [test, body, status, type] of refusals) {
      const res = await analysisAct(p, u.tech, accession, test, 'result', body);
      assert.equal(res.status, status, JSON.stringify(res.body));
      assert.equal(res.body.type, problem(type));
    }
    const early = await analysisAct(p, u.tech, accession, numeric, 'submit');
    assert.equal(early.status, 409, JSON.stringify(early.body));
    assert.equal(await entries(), 0, 'nothing written');

    assert.equal((await analysisAct(p, u.tech, accession, coded, 'cancel', { reason: '' })).status, 400);
    const cancelled = await mustAnalysisAct(p, u.tech, accession, coded, 'cancel', { reason: 'ordered in error' });
    assert.deepEqual([cancelled.state, cancelled.reason], ['cancelled', 'ordered in error']);
    const onCancelled = await analysisAct(p, u.tech, accession, coded, 'result', { kind: 'coded', code: 'positive', performedBy: 'x' });
    assert.equal(onCancelled.status, 409);
    assert.equal(onCancelled.body.type, problem('analysis-cancelled'));
    assert.equal(await entries(), 0, 'nothing written');

    // A clinician reads but does not enter; a stale signature is refused.
    assert.equal((await analysisAct(p, u.doc, accession, numeric, 'result', TSH)).status, 403);
    await mustAnalysisAct(p, u.tech, accession, numeric, 'result', TSH);
    await mustAnalysisAct(p, u.tech, accession, numeric, 'submit');
    const stale = await analysisAct(p, u.tech2, accession, numeric, 'verify', {
      signature: { password: u.tech2.password, meaning: 'verification', contentHash: 'a'.repeat(64) },
    });
    assert.equal(stale.status, 409);
    assert.equal(stale.body.type, problem('stale-content-hash'));
    const wrongPassword = await analysisAct(p, u.tech2, accession, numeric, 'verify', {
      signature: { password: 'nope', meaning: 'verification', contentHash: (await readAnalysis(p, u.tech2, accession, numeric)).contentHash },
    });
    assert.equal(wrongPassword.status, 403);
    const rejected = await mustAnalysisAct(p, u.tech2, accession, numeric, 'reject', { reason: 'haemolysed on review' });
    assert.equal(rejected.state, 'rejected');
  });

  it('needs the configured number of verifications by distinct people', async () => {
    const { p, u } = lab;
    const test = await testCode({ verificationsRequired: 2 });
    const accession = await routedSample(p, u.doc, u.tech, [test]);
    await mustAnalysisAct(p, u.tech, accession, test, 'result', TSH);
    await mustAnalysisAct(p, u.tech, accession, test, 'submit');
    const first = await sign(p, u.tech2, accession, test, 'verify');
    assert.equal(first.status, 200, JSON.stringify(first.body));
    assert.equal(first.body.state, 'to_be_verified', 'one of two');
    const again = await sign(p, u.tech2, accession, test, 'verify');
    assert.equal(again.status, 403);
    assert.equal(again.body.rule, 'distinct-verifiers');
    const second = await sign(p, u.tech3, accession, test, 'verify');
    assert.equal(second.body.state, 'verified');
    assert.equal(second.body.verifications.length, 2);
    assert.deepEqual(
      (await refusedVerifications(`analysis:${accession}:${test}`)).map((r) => r.details.rule),
      ['distinct-verifiers'],
    );
  });

  it('lets one person verify again, but never twice in a row, where the policy says so (self-verification allowed)', async () => {
    const { p, u } = lab;
    const test = await testCode({ verificationsRequired: 3, multiVerification: 'not_consecutive', selfVerification: true });
    const accession = await routedSample(p, u.doc, u.tech, [test]);
    await mustAnalysisAct(p, u.tech, accession, test, 'result', TSH);
    await mustAnalysisAct(p, u.tech, accession, test, 'submit');
    assert.equal((await sign(p, u.tech, accession, test, 'verify')).body.state, 'to_be_verified', 'the enterer may verify here');
    const twice = await sign(p, u.tech, accession, test, 'verify');
    assert.equal(twice.status, 403);
    assert.equal(twice.body.rule, 'consecutive-verification');
    assert.equal((await sign(p, u.tech2, accession, test, 'verify')).body.state, 'to_be_verified');
    const third = await sign(p, u.tech, accession, test, 'verify');
    assert.equal(third.body.state, 'verified', JSON.stringify(third.body));
    assert.deepEqual(
      third.body.verifications.map((v: { username: string }) => v.username),
      [u.tech.username, u.tech2.username, u.tech.username],
    );
  });

  it('freezes the original on a retest and links it to a new run; a retracted result keeps its reason', async () => {
    const { p, u } = lab;
    const test = await testCode();
    const accession = await routedSample(p, u.doc, u.tech, [test]);
    await mustAnalysisAct(p, u.tech, accession, test, 'result', { ...TSH, value: 1.9 });
    assert.equal((await readAnalysis(p, u.tech, accession, test)).result.flag, 'critical_low');
    await mustAnalysisAct(p, u.tech, accession, test, 'submit');
    const retest = await mustAnalysisAct(p, u.tech, accession, test, 'retest');
    assert.equal(retest.workflowId, `analysis:${accession}:${test}:2`);
    assert.equal(retest.retestOf, `analysis:${accession}:${test}`);
    assert.equal(retest.state, 'pending');
    const items = (await p.api('GET', `/api/v1/samples/${accession}/analyses`, { key: u.tech.apiKey })).body.items;
    const original = items.find((a: { retestNumber: number }) => a.retestNumber === 1);
    assert.deepEqual(
      [original.state, original.frozen, original.retestedBy, original.result.value],
      ['to_be_verified', true, retest.workflowId, 1.9],
    );
    await waitFor(
      async () => (await testEnv().client.workflow.getHandle(`analysis:${accession}:${test}`).describe()).status.name === 'COMPLETED',
      'the original run ended frozen',
    );

    const redo = await mustAnalysisAct(p, u.tech, accession, test, 'result', { ...TSH, value: 8 });
    assert.deepEqual([redo.retestNumber, redo.result.flag], [2, 'critical_high']);
    const retracted = await mustAnalysisAct(p, u.tech, accession, test, 'retract', { reason: 'wrong sample loaded' });
    assert.deepEqual([retracted.state, retracted.reason, retracted.result.value], ['retracted', 'wrong sample loaded', 8]);
    const frozen = await testEnv().db('analyses').where({ accession, retest_number: 1 }).first('state', 'frozen');
    assert.deepEqual(frozen, { state: 'to_be_verified', frozen: true });
  });

  it('judges against the range for the patient’s sex, and flags nothing when no range matches', async () => {
    const { p, u } = lab;
    const test = await testCode({ ranges: [{ sex: 'female', low: 10, high: 20 }, { sex: 'male', low: 30, high: 40 }] });
    const female = await routedSample(p, u.doc, u.tech, [test], { sex: 'female' });
    const unknown = await routedSample(p, u.doc, u.tech, [test]);
    const f = await mustAnalysisAct(p, u.tech, female, test, 'result', { ...TSH, value: 25 });
    assert.deepEqual([f.result.flag, f.result.referenceRange.sex], ['high', 'female']);
    const n = await mustAnalysisAct(p, u.tech, unknown, test, 'result', { ...TSH, value: 25 });
    assert.deepEqual([n.result.flag, n.result.referenceRange], [null, null], 'no range, no flag: never a false normal');
  });
});
