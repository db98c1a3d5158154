/**
 * Drives real critical-value calls through the API on the test server and saves their histories as replay fixtures
 * in test/fixtures/histories/critical-calls/ (and the analysis run that started one, in results/). Run with
 * `npx mocha test/critical-calls/capture-histories.ts` after a deliberate change to what a run records; commit the
 * new files. Payloads are stored decoded; each file is checked to hold no value, read-back, name or note.
 */
import assert from 'node:assert/strict';
import { startPlatform, type Platform } from '../helpers/platform';
import { saveCheckedFixture } from '../helpers/replay-suite';
import { makeUsers, type TestUser } from '../helpers/users';
import { waitFor } from '../helpers/wait';
import { testEnv } from '../setup/env';
import { mustAnalysisAct, testCode } from '../results/support';
import { callInState, enter, logAttempt, openedCall, routedWithProvider } from './support';

const SECRET = { value: 8.7654, wrongReadBack: '8.7645', calledName: 'CalledFixtureName', note: 'NoteFixtureText' };

const save = (folder: string, name: string, workflowId: string) => saveCheckedFixture(testEnv().client, folder, name, workflowId, [String(SECRET.value), SECRET.wrongReadBack, SECRET.calledName, SECRET.note]);

const closed = (workflowId: string) =>
  waitFor(async () => (await testEnv().client.workflow.getHandle(workflowId).describe()).status.name === 'COMPLETED', `${workflowId} closed`);

describe('capturing critical-value call replay fixtures from real runs', function () {
  this.timeout(120_000);
  let p: Platform;
  let u: Record<'doc' | 'provider' | 'tech' | 'director', TestUser>;
  before(async () => {
    p = await startPlatform({ activityDeps: { criticalCalls: { maxAttempts: 2, deadline: '10m' } } });
    u = await makeUsers({ doc: ['clinician'], provider: ['clinician'], tech: ['lab_technician'], director: ['lab_director'] });
  });
  after(() => p.stop());

  it('records a call escalated after failed attempts and confirmed by the lab director, and one without an ordering provider', async () => {
    const [escalated, unnamed] = [await testCode(), await testCode()];
    const accession = await routedWithProvider(p, u.doc, u.tech, [escalated], u.provider);
    await enter(p, u.tech, accession, escalated, SECRET.value);
    await openedCall(accession, escalated);
    const attempts = [
      { requestId: 'c-1', called: 'ordering_provider', outcome: 'CONFIRMED', readBack: SECRET.wrongReadBack },
      { requestId: 'c-2', called: { name: SECRET.calledName }, outcome: 'UNABLE_TO_REACH', note: SECRET.note },
    ];
    for (const body of attempts) assert.equal((await logAttempt(p, u.tech, accession, escalated, body)).status, 200);
    await callInState(accession, escalated, 'escalated');
    const confirm = { requestId: 'c-3', called: 'ordering_provider', outcome: 'CONFIRMED', readBack: String(SECRET.value) };
    assert.equal((await logAttempt(p, u.director, accession, escalated, confirm)).status, 200);
    // The analysis goes on to its end; its run started the call as a child it abandons.
    await mustAnalysisAct(p, u.tech, accession, escalated, 'cancel', { reason: 'fixture' });

    const other = await routedWithProvider(p, u.doc, u.tech, [unnamed], null);
    await enter(p, u.tech, other, unnamed, 1.1);
    await callInState(other, unnamed, 'escalated');
    const director = { requestId: 'd-1', called: { name: SECRET.calledName }, outcome: 'CONFIRMED', readBack: '1.1' };
    assert.equal((await logAttempt(p, u.director, other, unnamed, director)).status, 200);

    const ids = {
      escalated: `critical-call:${accession}:${escalated}`,
      unnamed: `critical-call:${other}:${unnamed}`,
      analysis: `analysis:${accession}:${escalated}`,
    };
    for (const id of Object.values(ids)) await closed(id);
    await save('critical-calls', 'escalated-after-attempts-confirmed-by-director', ids.escalated);
    await save('critical-calls', 'no-ordering-provider-escalated-at-once', ids.unnamed);
    await save('results', 'critical-result-started-its-call', ids.analysis);
  });
});
