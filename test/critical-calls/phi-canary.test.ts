import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { decodePayloadsIn } from '../../workers/replay';
import { textOf } from '../helpers/history-text';
import { startPlatform, type Platform } from '../helpers/platform';
import { makeUsers, type TestUser } from '../helpers/users';
import { testEnv } from '../setup/env';
import { testCode } from '../results/support';
import { callInState, enter, logAttempt, openedCall, routedWithProvider } from './support';

describe('critical-value calls keep values out of Temporal', function () {
  this.timeout(120_000);
  let p: Platform;
  let u: Record<'doc' | 'provider' | 'tech' | 'director', TestUser>;
  before(async () => {
    p = await startPlatform({ activityDeps: { criticalCalls: { maxAttempts: 1, deadline: '10m' } } });
    u = await makeUsers({ doc: ['clinician'], provider: ['clinician'], tech: ['lab_technician'], director: ['lab_director'] });
  });
  after(() => p.stop());

  it('holds neither the value, the read-back, whom was called nor the note in the call’s or the analysis’s history', async () => {
    const test = await testCode();
    const accession = await routedWithProvider(p, u.doc, u.tech, [test], u.provider);
    // A critical value (above 7) with digits no ID or timestamp carries.
    const digits = String(10_000_000 + (Date.now() % 80_000_000));
    const value = Number(`9.${digits}`);
    const canary = { wrong: `9.${digits}9`, name: `Canary${randomBytes(6).toString('hex')}`, note: `Canary${randomBytes(6).toString('hex')}` };
    await enter(p, u.tech, accession, test, value);
    const call = await openedCall(accession, test);
    const wrong = await logAttempt(p, u.tech, accession, test, { requestId: 'p-1', called: { name: canary.name }, outcome: 'CONFIRMED', readBack: canary.wrong, note: canary.note });
    assert.equal(wrong.status, 200, JSON.stringify(wrong.body));
    await callInState(accession, test, 'escalated');
    const right = await logAttempt(p, u.director, accession, test, { requestId: 'p-2', called: 'ordering_provider', outcome: 'CONFIRMED', readBack: String(value) });
    assert.equal(right.body.attempt.outcome, 'CONFIRMED');
    await testEnv().client.workflow.getHandle(call.workflow_id).result();

    const { client, dataConverter } = testEnv();
    const texts: string[] = [];
    for (const id of [call.workflow_id, `analysis:${accession}:${test}`]) {
      const history = await client.workflow.getHandle(id).fetchHistory();
      assert.ok(history.events?.length, id);
      texts.push(textOf(history));
      await decodePayloadsIn(history, dataConverter.payloadCodecs ?? []);
      texts.push(textOf(history));
    }
    const all = texts.join('\n');
    assert.ok(all.includes(call.workflow_id), 'the histories were read (they name the call)');
    for (const leak of [String(value), canary.wrong, canary.name, canary.note]) assert.ok(!all.includes(leak), `a history carries ${leak}`);
  });

  it('holds no value in the histories of a call withdrawn by an edit, the analysis that told it, and the call opened when critical again', async () => {
    const test = await testCode();
    const accession = await routedWithProvider(p, u.doc, u.tech, [test], u.provider);
    const digits = String(10_000_000 + (Date.now() % 80_000_000));
    const values = { critical: Number(`9.${digits}`), normal: Number(`4.${digits}`), again: Number(`8.${digits}`) };
    const canary = { name: `Canary${randomBytes(6).toString('hex')}`, note: `Canary${randomBytes(6).toString('hex')}` };
    await enter(p, u.tech, accession, test, values.critical);
    const first = await openedCall(accession, test);
    const reached = await logAttempt(p, u.tech, accession, test, { requestId: 'w-1', called: { name: canary.name }, outcome: 'REACHED_NO_READBACK', note: canary.note });
    assert.equal(reached.status, 200, JSON.stringify(reached.body));
    await enter(p, u.tech, accession, test, values.normal);
    await callInState(accession, test, 'withdrawn');
    await testEnv().client.workflow.getHandle(first.workflow_id).result();
    await enter(p, u.tech, accession, test, values.again);
    const second = `critical-call:${accession}:${test}:call-2`;
    await callInState(accession, test, 'calling');

    const { client, dataConverter } = testEnv();
    const texts: string[] = [];
    for (const id of [first.workflow_id, second, `analysis:${accession}:${test}`]) {
      const history = await client.workflow.getHandle(id).fetchHistory();
      assert.ok(history.events?.length, id);
      texts.push(textOf(history));
      await decodePayloadsIn(history, dataConverter.payloadCodecs ?? []);
      texts.push(textOf(history));
    }
    const all = texts.join('\n');
    assert.ok(all.includes('criticalCallRecordChanged'), 'the analysis told the call (the signal is in the histories)');
    assert.ok(all.includes(second), 'the histories name the new call');
    for (const leak of [...Object.values(values).map(String), canary.name, canary.note]) assert.ok(!all.includes(leak), `a history carries ${leak}`);
  });
});
