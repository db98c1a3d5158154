/**
 * Drives analysis runs through autoverification on the test server and saves their histories as replay fixtures in
 * test/fixtures/histories/results/ (beside the fixtures from before autoverification, which must keep replaying).
 * Run with `npx mocha test/results/capture-autoverification-histories.ts` after a deliberate change; commit the
 * new files. Each file is checked to hold no result value, performer or instrument.
 */
import assert from 'node:assert/strict';
import { runClosed } from '../reports/support';
import { approvedRules, fixtureSaver, labPlatform, mustAnalysisAct, sign, testCode } from './support';
import { patientOf, routedFor } from './rules-support';

const SECRET = { value: 4.4321, performedBy: 'PerformerFixtureName', instrument: 'InstrumentFixtureId' };
const save = fixtureSaver([String(SECRET.value), SECRET.performedBy, SECRET.instrument]);

describe('capturing autoverification replay fixtures from real runs', function () {
  this.timeout(120_000);
  const lab = labPlatform();

  it('records an autoverified result released, and one the rules sent to a person', async () => {
    const { p, u } = lab;
    const test = await testCode();
    await approvedRules(p, u.director, test, { blockedInstrumentFlags: ['HEM'] });
    const patient = patientOf();
    const passing = await routedFor(p, u.doc, u.tech, [test], patient);
    const failing = await routedFor(p, u.doc, u.tech, [test], patient);
    const result = { kind: 'numeric', unit: 'mmol/L', ...SECRET };

    await mustAnalysisAct(p, u.tech, passing, test, 'result', result);
    assert.equal((await mustAnalysisAct(p, u.tech, passing, test, 'submit')).state, 'verified');
    assert.equal((await sign(p, u.director, passing, test, 'release')).status, 200);

    await mustAnalysisAct(p, u.tech, failing, test, 'result', { ...result, instrumentFlags: ['HEM'] });
    assert.equal((await mustAnalysisAct(p, u.tech, failing, test, 'submit')).state, 'to_be_verified');
    assert.equal((await sign(p, u.tech2, failing, test, 'verify')).status, 200);
    assert.equal((await sign(p, u.director, failing, test, 'release')).status, 200);

    const ids = { passed: `analysis:${passing}:${test}`, failed: `analysis:${failing}:${test}` };
    for (const id of Object.values(ids)) await runClosed(id);
    await save('results', 'autoverified-released', ids.passed);
    await save('results', 'autoverification-failed-verified-by-a-person', ids.failed);
  });
});
