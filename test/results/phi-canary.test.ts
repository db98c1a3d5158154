import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { decodePayloadsIn } from '../../workers/replay';
import { textOf } from '../helpers/history-text';
import { startPlatform, type Platform } from '../helpers/platform';
import { makeUsers, type TestUser } from '../helpers/users';
import { testEnv } from '../setup/env';
import { mustAnalysisAct, routedSample, sign, testCode } from './support';

const canary = () => `Canary${randomBytes(8).toString('hex')}`;

describe('results keep values out of Temporal', function () {
  this.timeout(120_000);
  let p: Platform;
  let u: Record<'doc' | 'tech' | 'tech2' | 'director', TestUser>;
  before(async () => {
    p = await startPlatform();
    u = await makeUsers({ doc: ['clinician'], tech: ['lab_technician'], tech2: ['lab_technician'], director: ['lab_director'] });
  });
  after(() => p.stop());

  it('holds no result value, performer or instrument in any analysis run’s history, raw or decoded', async () => {
    const [numeric, text] = [await testCode(), await testCode({ kind: 'text' })];
    const accession = await routedSample(p, u.doc, u.tech, [numeric, text]);
    const c = { text: canary(), performer: canary(), instrument: canary(), edit: canary() };
    const value = 4.0 + Number(`0.${Date.now() % 1_000_000}17`);
    await mustAnalysisAct(p, u.tech, accession, text, 'result', { kind: 'text', text: `Smear: ${c.edit}`, performedBy: c.performer });
    await mustAnalysisAct(p, u.tech, accession, text, 'result', { kind: 'text', text: `Smear: ${c.text}`, performedBy: c.performer });
    await mustAnalysisAct(p, u.tech, accession, numeric, 'result', {
      kind: 'numeric',
      value,
      unit: 'mmol/L',
      performedBy: c.performer,
      instrument: c.instrument,
    });
    await mustAnalysisAct(p, u.tech, accession, numeric, 'submit');
    assert.equal((await sign(p, u.tech2, accession, numeric, 'verify')).status, 200);
    assert.equal((await sign(p, u.director, accession, numeric, 'release')).status, 200);
    await mustAnalysisAct(p, u.tech, accession, text, 'retest');

    const { client, dataConverter } = testEnv();
    const runs = [`analysis:${accession}:${numeric}`, `analysis:${accession}:${text}`, `analysis:${accession}:${text}:2`, `sample-intake:${accession}`];
    const decoded: string[] = [];
    for (const id of runs) {
      const history = await client.workflow.getHandle(id).fetchHistory();
      assert.ok(history.events?.length, id);
      const raw = textOf(history);
      await decodePayloadsIn(history, dataConverter.payloadCodecs ?? []);
      decoded.push(raw, textOf(history));
    }
    const all = decoded.join('\n');
    assert.match(all, /"entryId"/, 'the decoded histories hold the updates in clear');
    for (const [what, leak] of Object.entries({ ...c, value: String(value) })) assert.equal(all.includes(leak), false, `${what} in a history`);
    // Proof the values were stored: they are in Postgres.
    const stored = JSON.stringify(await testEnv().db('analysis_entries as e').join('analyses as a', 'a.id', 'e.analysis_id').where('a.accession', accession));
    for (const leak of Object.values(c)) assert.ok(stored.includes(leak), 'stored in Postgres');
    assert.ok(stored.includes(String(value)));
  });
});
