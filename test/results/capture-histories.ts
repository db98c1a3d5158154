/**
 * Drives real analysis runs through the API on the test server and saves their histories as replay fixtures in
 * test/fixtures/histories/results/ (and the routing sample's run, which starts them, in sample-intake/). Run with
 * `npx mocha test/results/capture-histories.ts` after a deliberate change to what a run records; commit the new
 * files. Payloads are stored decoded; each file is checked to hold no result value, performer or instrument.
 */
import assert from 'node:assert/strict';
import { runClosed } from '../reports/support';
import { fixtureSaver, labPlatform, mustAnalysisAct, routedSample, sign, testCode } from './support';

const SECRET = { value: 6.4321, performedBy: 'PerformerFixtureName', instrument: 'InstrumentFixtureId' };
const save = fixtureSaver([String(SECRET.value), SECRET.performedBy, SECRET.instrument]);

describe('capturing analysis replay fixtures from real runs', function () {
  this.timeout(120_000);
  const lab = labPlatform();

  it('records a released result, a retest, a retraction and a cancellation', async () => {
    const { p, u } = lab;
    const [released, retested, cancelled] = [await testCode({ verificationsRequired: 2 }), await testCode(), await testCode({ kind: 'text' })];
    const accession = await routedSample(p, u.doc, u.tech, [released, retested, cancelled]);
    const result = { kind: 'numeric', unit: 'mmol/L', ...SECRET };
    await mustAnalysisAct(p, u.tech, accession, released, 'result', result);
    await mustAnalysisAct(p, u.tech, accession, released, 'submit');
    assert.equal((await sign(p, u.tech, accession, released, 'verify')).status, 403);
    assert.equal((await sign(p, u.tech2, accession, released, 'verify')).status, 200);
    assert.equal((await sign(p, u.tech3, accession, released, 'verify')).status, 200);
    assert.equal((await sign(p, u.director, accession, released, 'release')).status, 200);

    await mustAnalysisAct(p, u.tech, accession, retested, 'result', result);
    await mustAnalysisAct(p, u.tech, accession, retested, 'retest');
    await mustAnalysisAct(p, u.tech, accession, retested, 'result', { ...result, value: 2 });
    await mustAnalysisAct(p, u.tech, accession, retested, 'retract', { reason: 'calibration drift' });
    await mustAnalysisAct(p, u.tech, accession, cancelled, 'cancel', { reason: 'ordered in error' });

    const ids = {
      released: `analysis:${accession}:${released}`,
      retested: `analysis:${accession}:${retested}`,
      retracted: `analysis:${accession}:${retested}:2`,
      cancelled: `analysis:${accession}:${cancelled}`,
    };
    for (const id of Object.values(ids)) await runClosed(id);
    await save('results', 'released-two-verifications', ids.released);
    await save('results', 'retested-frozen', ids.retested);
    await save('results', 'retest-retracted', ids.retracted);
    await save('results', 'cancelled', ids.cancelled);
    await save('sample-intake', 'routed-analyses-started', `sample-intake:${accession}`);
  });
});
