/**
 * Drives critical-value calls that are withdrawn through the API on the test server and saves their histories as
 * replay fixtures (patched 'critical-call-withdrawal'): in test/fixtures/histories/critical-calls/ a call withdrawn
 * by an edit after an attempt reached someone, a second call withdrawn by the analysis's cancellation and a call
 * withdrawn by its retest's result, and in results/ the analysis run that withdrew the first, called again and was
 * cancelled, and the retest run whose result withdrew its original's call; and a retested value's escalated call
 * withdrawn by its specimen's rejection, ended by the signal of the sample run (in sample-intake/), saved too. Run with
 * `npx mocha test/critical-calls/capture-withdrawal-histories.ts` after a deliberate change to what these runs record;
 * commit the new files. Payloads are stored decoded; each file is checked to hold no value, name or note.
 */
import assert from 'node:assert/strict';
import { startPlatform, type Platform } from '../helpers/platform';
import { saveCheckedFixture } from '../helpers/replay-suite';
import { makeUsers, type TestUser } from '../helpers/users';
import { waitFor } from '../helpers/wait';
import { testEnv } from '../setup/env';
import { assembledAndReleased } from '../reports/support';
import { mustAnalysisAct, testCode } from '../results/support';
import { mustAct } from '../sample-intake/support';
import { callInState, enter, logAttempt, openedCall, routedWithProvider } from './support';

const SECRET = { value: 8.7654, normal: 4.4321, again: 9.1234, calledName: 'CalledFixtureName', note: 'NoteFixtureText' };

const save = (folder: string, name: string, workflowId: string) =>
  saveCheckedFixture(testEnv().client, folder, name, workflowId, [String(SECRET.value), String(SECRET.normal), String(SECRET.again), SECRET.calledName, SECRET.note]);

const closed = (workflowId: string) =>
  waitFor(async () => (await testEnv().client.workflow.getHandle(workflowId).describe()).status.name === 'COMPLETED', `${workflowId} closed`);

describe('capturing replay fixtures of withdrawn critical-value calls from real runs', function () {
  this.timeout(120_000);
  let p: Platform;
  let u: Record<'doc' | 'provider' | 'tech' | 'director', TestUser>;
  before(async () => {
    p = await startPlatform({ activityDeps: { criticalCalls: { maxAttempts: 3, deadline: '10m' } } });
    u = await makeUsers({ doc: ['clinician'], provider: ['clinician'], tech: ['lab_technician'], director: ['lab_director'] });
  });
  after(() => p.stop());

  it('records a call withdrawn by an edit after reaching someone, the new call of a value critical again, and the cancellation that withdrew it', async () => {
    const test = await testCode();
    const accession = await routedWithProvider(p, u.doc, u.tech, [test], u.provider);
    await enter(p, u.tech, accession, test, SECRET.value);
    const first = await openedCall(accession, test);
    const reached = await logAttempt(p, u.tech, accession, test, { requestId: 'w-1', called: { name: SECRET.calledName }, outcome: 'REACHED_NO_READBACK', note: SECRET.note });
    assert.equal(reached.status, 200, JSON.stringify(reached.body));
    await enter(p, u.tech, accession, test, SECRET.normal);
    await callInState(accession, test, 'withdrawn');
    await closed(first.workflow_id);
    await enter(p, u.tech, accession, test, SECRET.again);
    const second = await callInState(accession, test, 'calling');
    assert.equal(second.workflow_id, `critical-call:${accession}:${test}:call-2`);
    await mustAnalysisAct(p, u.tech, accession, test, 'cancel', { reason: 'fixture' });
    await callInState(accession, test, 'withdrawn');

    const analysis = `analysis:${accession}:${test}`;
    for (const id of [first.workflow_id, second.workflow_id, analysis]) await closed(id);
    await save('critical-calls', 'withdrawn-by-an-edit-after-reaching-someone', first.workflow_id);
    await save('critical-calls', 'second-call-withdrawn-by-cancellation', second.workflow_id);
    await save('results', 'critical-result-withdrawn-called-again-cancelled', analysis);
  });
  it("records a retest whose first result withdrew the call of the value it retests (reason retested)", async () => {
    const test = await testCode();
    const accession = await routedWithProvider(p, u.doc, u.tech, [test], u.provider);
    await enter(p, u.tech, accession, test, SECRET.value);
    const original = await openedCall(accession, test);
    await mustAnalysisAct(p, u.tech, accession, test, 'submit');
    await mustAnalysisAct(p, u.tech, accession, test, 'retest');
    await enter(p, u.tech, accession, test, SECRET.normal);
    const withdrawn = await callInState(accession, test, 'withdrawn');
    assert.equal(withdrawn.withdrawal_reason, 'retested');
    await mustAnalysisAct(p, u.tech, accession, test, 'cancel', { reason: 'fixture' });

    const retest = `analysis:${accession}:${test}:2`;
    for (const id of [original.workflow_id, retest]) await closed(id);
    await save('critical-calls', 'withdrawn-by-its-retest', original.workflow_id);
    await save('results', 'retest-result-withdrew-original-call', retest);
  });

  it('records a rejected specimen whose sample run told the withdrawn call of its retested value, and that call (escalated, waiting) ended by the signal', async () => {
    const test = await testCode();
    // No ordering provider: the call escalates at once and waits, open, for its signal (patched 'critical-call-told-of-every-withdrawal').
    const accession = await routedWithProvider(p, u.doc, u.tech, [test], null);
    await enter(p, u.tech, accession, test, SECRET.value);
    const original = await callInState(accession, test, 'escalated');
    await mustAnalysisAct(p, u.tech, accession, test, 'submit');
    await mustAnalysisAct(p, u.tech, accession, test, 'retest');
    await mustAct(p, u.tech, accession, 'reject', { code: 'RB', condition: 'Tube cracked in transit', disposition: 'discarded' });
    const withdrawn = await callInState(accession, test, 'withdrawn');
    assert.equal(withdrawn.workflow_id, original.workflow_id);
    assert.equal(withdrawn.withdrawal_reason, 'cancelled');
    // The rejection's report, released, lets the sample's run end.
    await assembledAndReleased(p, u.director, accession);

    const sample = `sample-intake:${accession}`;
    for (const id of [original.workflow_id, sample]) await closed(id);
    await save('critical-calls', 'escalated-retested-call-withdrawn-told-by-rejection', original.workflow_id);
    await save('sample-intake', 'rejected-told-retested-call', sample);
  });
});
