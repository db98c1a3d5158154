/**
 * Drives analysis runs through autoverification on the test server and saves their histories as replay fixtures in
 * test/fixtures/histories/results/ (beside the fixtures from before autoverification, which must keep replaying).
 * Run with `npx mocha test/results/capture-autoverification-histories.ts` after a deliberate change; commit the
 * new files. Each file is checked to hold no result value, performer or instrument.
 */
import assert from 'node:assert/strict';
import { mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { contentHashOf } from '../../common/capa-hash';
import { fetchFixture, saveFixture } from '../../workers/replay';
import { startPlatform, type Platform } from '../helpers/platform';
import { historiesDir } from '../helpers/replay-suite';
import type { TestUser } from '../helpers/users';
import { waitFor } from '../helpers/wait';
import { testEnv } from '../setup/env';
import { labUsers, mustAnalysisAct, sign, testCode } from './support';
import { patientOf, routedFor } from './rules-support';

const SECRET = { value: 4.4321, performedBy: 'PerformerFixtureName', instrument: 'InstrumentFixtureId' };

async function save(name: string, workflowId: string): Promise<void> {
  const dir = historiesDir('results');
  mkdirSync(dir, { recursive: true });
  const file = join(dir, `${name}.json`);
  await saveFixture(file, await fetchFixture(testEnv().client, workflowId));
  const text = readFileSync(file, 'utf8');
  for (const leak of [String(SECRET.value), SECRET.performedBy, SECRET.instrument]) assert.ok(!text.includes(leak), `${name} carries ${leak}`);
}

const closed = (workflowId: string) =>
  waitFor(async () => (await testEnv().client.workflow.getHandle(workflowId).describe()).status.name === 'COMPLETED', `${workflowId} closed`);

describe('capturing autoverification replay fixtures from real runs', function () {
  this.timeout(120_000);
  let p: Platform;
  let u: Record<'doc' | 'tech' | 'tech2' | 'tech3' | 'director', TestUser>;
  before(async () => {
    p = await startPlatform();
    u = await labUsers();
  });
  after(() => p.stop());

  it('records an autoverified result released, and one the rules sent to a person', async () => {
    const test = await testCode();
    const rules = {
      allowedFlags: ['normal'],
      limits: null,
      delta: 'ignore',
      blockedInstrumentFlags: ['HEM'],
      requireAcceptableSpecimen: true,
      requireInstrument: true,
    };
    const created = await p.api('POST', `/api/v1/tests/${test}/autoverification-rules`, {
      key: u.director.apiKey,
      body: { basedOnVersion: null, rules, signature: { password: u.director.password, meaning: 'approval', contentHash: contentHashOf({ test, version: 1, rules }) } },
    });
    assert.equal(created.status, 201, JSON.stringify(created.body));
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
    for (const id of Object.values(ids)) await closed(id);
    await save('autoverified-released', ids.passed);
    await save('autoverification-failed-verified-by-a-person', ids.failed);
  });
});
