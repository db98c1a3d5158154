/**
 * Drives real report runs through the API on the test server and saves their histories as replay fixtures in
 * test/fixtures/histories/reports/. Run with `npx mocha test/reports/capture-histories.ts` after a deliberate change
 * to what a report run records; commit the new files. Payloads are stored decoded; each file is checked to hold no
 * patient identifier, result value, performer or correction reason.
 */
import assert from 'node:assert/strict';
import { fixtureSaver, labPlatform, mustAnalysisAct, routedSample, sign, testCode } from '../results/support';
import { assembled, assemblyHolds, release, releaseAcceptedWhileAssembling, reportUrl, runClosed } from './support';

const SECRET = { value: 6.4321, performedBy: 'PerformerFixtureName', reason: 'ReasonFixtureText', patient: 'Lovelace', mrn: 'MRN-0042' };
const save = fixtureSaver([String(SECRET.value), SECRET.performedBy, SECRET.reason, SECRET.patient, SECRET.mrn]);

describe('capturing report replay fixtures from real runs', function () {
  this.timeout(180_000);
  const assembly = assemblyHolds();
  const lab = labPlatform({ wrapActivities: assembly.wrapActivities });

  it('records a released report and its released correction', async () => {
    const { p, u } = lab;
    const test = await testCode();
    const accession = await routedSample(p, u.doc, u.tech, [test]);
    await mustAnalysisAct(p, u.tech, accession, test, 'result', { kind: 'numeric', unit: 'mmol/L', value: SECRET.value, performedBy: SECRET.performedBy });
    await mustAnalysisAct(p, u.tech, accession, test, 'submit');
    assert.equal((await sign(p, u.tech2, accession, test, 'verify')).status, 200);
    await assembled(p, u.director, accession);
    assert.equal((await release(p, u.director, accession, 1)).status, 200);
    const corrected = await p.api('POST', reportUrl(accession, 1, 'correct'), { key: u.director.apiKey, body: { reason: SECRET.reason } });
    assert.equal(corrected.status, 202, JSON.stringify(corrected.body));
    await assembled(p, u.director, accession, 2);
    assert.equal((await release(p, u.director, accession, 2)).status, 200);
    for (const v of [1, 2]) await runClosed(`report:${accession}:v${v}`);
    await save('reports', 'released', `report:${accession}:v1`);
    await save('reports', 'corrected-v2', `report:${accession}:v2`);
  });

  it('records a release accepted while the run was still assembling (read from the record a moment before)', async () => {
    const { p, u } = lab;
    const held = await assembly.heldSample(p, u);
    const { test, accession, workflowId } = held;
    try {
      await mustAnalysisAct(p, u.tech, accession, test, 'result', { kind: 'numeric', unit: 'mmol/L', value: SECRET.value, performedBy: SECRET.performedBy });
      await mustAnalysisAct(p, u.tech, accession, test, 'submit');
      assert.equal((await sign(p, u.tech2, accession, test, 'verify')).status, 200);
      await held.recordWritten;
      const { releasing } = await releaseAcceptedWhileAssembling(p, u.director, accession);
      held.free();
      assert.equal((await releasing).status, 200);
    } finally {
      held.free();
    }
    await runClosed(workflowId);
    await save('reports', 'released-accepted-while-assembling', workflowId);
  });
});
