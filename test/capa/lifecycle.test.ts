import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { canonicalJson, sha256HexOf } from '../../common/capa-hash';
import { testEnv } from '../setup/env';
import { startPlatform, type Platform } from '../helpers/platform';
import { makeUsers, type TestUser } from '../helpers/users';
import { waitFor } from '../helpers/wait';
import { act, createCapa, getCapa, inHours, sign, toImplementation, waitForStage } from './support';

describe('a CAPA from initiation to closure on the real dev server', () => {
  let p: Platform;
  let u: Record<'qa' | 'qa2' | 'owner' | 'tech' | 'director' | 'initiator', TestUser>;
  before(async () => {
    p = await startPlatform();
    u = await makeUsers({
      qa: ['qa_manager'],
      qa2: ['qa_manager'],
      owner: ['lab_technician'],
      tech: ['lab_technician'],
      director: ['lab_director'],
      initiator: ['clinician'],
    });
  });
  after(() => p.stop());

  it('hashes like node:crypto, over JSON whose key order does not matter', () => {
    for (const text of ['', 'abc', 'ünïcödé ✓ 😀', 'x'.repeat(1000)]) {
      assert.equal(sha256HexOf(text), createHash('sha256').update(text, 'utf8').digest('hex'));
    }
    assert.equal(canonicalJson({ b: 1, a: [{ d: 2, c: 3 }] }), canonicalJson({ a: [{ c: 3, d: 2 }], b: 1 }));
  });

  it('walks every stage, fails an effectiveness check and loops back, passes, closes signed and reopens', async () => {
    const { number, workflowId } = await createCapa(p, u.initiator, { sources: [{ type: 'sample', id: `ACC-${Date.now()}` }] });
    assert.match(number, /^CAPA-\d{4}-\d{4}$/);
    assert.equal(workflowId, `capa:${number}`);
    const triage = await getCapa(p, u.qa, number);
    assert.deepEqual(triage.assignees, ['role:qa_manager']);
    assert.equal(triage.sources.length, 1);

    await toImplementation(p, u, number, [
      { type: 'correction', description: 'Re-draw affected patients', owner: { user: u.owner.username }, dueAt: inHours(48) },
      { type: 'corrective', description: 'Retrain phlebotomists', owner: { user: u.tech.username }, dueAt: inHours(72) },
    ]);
    const impl = await getCapa(p, u.qa, number);
    assert.equal(impl.process.risk.score, 12);
    assert.equal(impl.process.risk.level, 'medium');
    assert.deepEqual(impl.assignees.sort(), [`user:${u.owner.username}`, `user:${u.tech.username}`].sort());
    const inbox = await p.api('GET', '/api/v1/tasks?mine=1&state=open', { key: u.tech.apiKey });
    assert.ok(inbox.body.items.some((t: { entity_id: string; kind: string }) => t.entity_id === number && t.kind === 'capa.action'));

    // Someone else cannot complete the owner's action.
    await act(p, u.tech, number, '/actions/A1/complete', { evidence: 'done' }, 403);
    await act(p, u.owner, number, '/actions/A1/complete', { evidence: 'All 12 re-drawn', attachments: ['doc:REDRAW-1'] });
    const last = await act(p, u.tech, number, '/actions/A2/complete', { evidence: 'Training record TR-9' });
    assert.equal(last.stage, 'effectiveness_wait');
    await waitForStage(p, u.qa, number, 'effectiveness_review');

    const failed = await act(p, u.qa, number, '/effectiveness', {
      results: [{ criterionId: 'C1', met: false, evidence: 'Rate still 5%' }],
      comment: 'Not effective',
    });
    assert.equal(failed.stage, 'investigation');
    assert.equal(failed.round, 2);
    assert.equal(failed.previousRounds[0].endedBy, 'effectiveness_failed');
    assert.equal(failed.previousRounds[0].plan.actions.length, 2, 'the failed round keeps its plan');
    assert.equal(failed.effectiveness[0].passed, false);

    await act(p, u.owner, number, '/investigation', { method: 'ishikawa', rootCause: 'Wrong needle gauge', findings: 'Gauge 25 in stock' });
    const plan2 = await act(p, u.owner, number, '/plan', {
      actions: [{ type: 'preventive', description: 'Stock gauge 21 only', owner: { user: u.owner.username }, dueAt: inHours(24) }],
      criteria: [{ description: 'Haemolysis rate', measure: 'below 2%' }],
    });
    await act(p, u.qa, number, '/plan/decision', { decision: 'approve', signature: sign(u.qa, plan2.plan.contentHash) });
    await act(p, u.owner, number, '/actions/A1/complete', { evidence: 'Purchasing changed' });
    await waitForStage(p, u.qa, number, 'effectiveness_review');
    const passed = await act(p, u.director, number, '/effectiveness', {
      results: [{ criterionId: 'C1', met: true, evidence: 'Rate 1.1%' }],
    });
    assert.equal(passed.stage, 'effectiveness_review');
    assert.ok(passed.closureContentHash);

    const closed = await act(p, u.qa2, number, '/close', {
      signature: sign(u.qa2, passed.closureContentHash, 'responsibility'),
      comment: 'Effective',
    });
    assert.equal(closed.stage, 'closed');
    assert.equal(closed.outcome, 'effective');
    assert.ok(closed.closedAt);
    const record = await getCapa(p, u.qa, number);
    assert.equal(record.signatures.length, 3, 'two plan approvals and the closure are signed');
    assert.ok(record.signatures.every((s: { void: boolean }) => !s.void));

    const reopened = await act(p, u.qa, number, '/reopen', { reason: 'Haemolysis is back' });
    assert.equal(reopened.stage, 'investigation');
    assert.equal(reopened.closedAt, null, 'the closure date is cleared');
    assert.equal(reopened.reopenings[0].closedAt, closed.closedAt, 'the old closure date stays in the record');
    assert.equal(reopened.round, 3);

    const audit = await p.api('GET', `/api/v1/capas/${number}/audit`, { key: u.qa.apiKey });
    const actions = audit.body.events.map((e: { action: string }) => e.action);
    for (const a of [
      'capa.initiated',
      'capa.triaged',
      'capa.contained',
      'capa.plan_approved',
      'capa.effectiveness_failed',
      'capa.effectiveness_passed',
      'capa.closed',
      'capa.reopened',
    ]) {
      assert.ok(actions.includes(a), `audit has ${a}`);
    }
    const row = await testEnv().db('capas').where({ number }).first();
    assert.equal(row.stage, 'investigation');
    assert.equal(row.risk_score, 12);
    assert.equal(row.closed_at, null);
  });

  it('closes a CAPA marked unfounded at triage, and merges one into another with its sources', async () => {
    const a = await createCapa(p, u.initiator);
    const unfounded = await act(p, u.qa, a.number, '/triage', { decision: 'unfounded', reason: 'Within specification' });
    assert.equal(unfounded.stage, 'closed');
    assert.equal(unfounded.outcome, 'unfounded');
    const reopened = await act(p, u.qa, a.number, '/reopen', { reason: 'New data' });
    assert.equal(reopened.stage, 'triage', 'an unfounded CAPA reopens to triage');

    const target = await createCapa(p, u.initiator);
    const source = { type: 'complaint', id: `CMP-${Date.now()}` };
    const dup = await createCapa(p, u.initiator, { sources: [source], allowDuplicate: true });
    const merged = await act(p, u.qa, dup.number, '/triage', { decision: 'merge', mergeInto: target.number, reason: 'Same root problem' });
    assert.equal(merged.outcome, 'merged');
    await waitFor(async () => (await getCapa(p, u.qa, target.number)).sources.length === 1, 'the source to move to the target');
  });

  it('cancels an open CAPA with a reason and then refuses anything more', async () => {
    const { number } = await createCapa(p, u.initiator);
    await act(p, u.qa, number, '/triage', { decision: 'accept', severity: 2, occurrence: 2, owner: u.owner.username });
    const cancelled = await act(p, u.qa, number, '/cancel', { reason: 'Raised in error' });
    assert.equal(cancelled.stage, 'cancelled');
    const res = await p.api('POST', `/api/v1/capas/${number}/containment`, { key: u.owner.apiKey, body: { summary: 'x' } });
    assert.equal(res.status, 409);
    const row = await testEnv().db('capas').where({ number }).first();
    assert.equal(row.stage, 'cancelled');
    const open = await testEnv().db('tasks').where({ entity_type: 'capa', entity_id: number, state: 'open' });
    assert.equal(open.length, 0, 'no task stays open');
    const got = await getCapa(p, u.qa, number);
    assert.equal(got.stage, 'cancelled');
  });
});
