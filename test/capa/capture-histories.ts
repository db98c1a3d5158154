/**
 * Drives real CAPA runs on the test server and saves their histories as replay fixtures in
 * test/fixtures/histories/capa/. Run with `npx mocha test/capa/capture-histories.ts` after a deliberate change to
 * what a CAPA run records.
 */
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { startCapaRun } from '../../api/temporal/capa';
import { triageUpdate } from '../../common/capa';
import { fetchFixture, saveFixture } from '../../workers/replay';
import { historiesDir } from '../helpers/replay-suite';
import { startPlatform, type Platform } from '../helpers/platform';
import { makeUsers, type TestUser } from '../helpers/users';
import { waitFor } from '../helpers/wait';
import { testEnv } from '../setup/env';
import { act, createCapa, fast, inHours, sign, toImplementation, waitForStage } from './support';

const dir = historiesDir('capa');

describe('capturing CAPA replay fixtures from real runs', () => {
  let p: Platform;
  let u: Record<'qa' | 'owner' | 'tech' | 'director' | 'initiator', TestUser>;
  before(async () => {
    p = await startPlatform();
    u = await makeUsers({
      qa: ['qa_manager'],
      owner: ['lab_technician'],
      tech: ['lab_technician'],
      director: ['lab_director'],
      initiator: ['clinician'],
    });
  });
  after(() => p.stop());
  const save = async (name: string, workflowId: string, runId?: string) =>
    saveFixture(join(dir, `${name}.json`), await fetchFixture(testEnv().client, workflowId, runId));

  it('captures every stage, a failed check and its loop back, signed closure, reopening and cancellation', async () => {
    const { number, workflowId } = await createCapa(p, u.initiator, { sources: [{ type: 'sample', id: `ACC-${Date.now()}` }] });
    await toImplementation(p, u, number, [
      { type: 'correction', description: 'Re-draw', owner: { user: u.owner.username }, dueAt: inHours(48) },
      { type: 'corrective', description: 'Retrain', owner: { user: u.tech.username }, dueAt: inHours(48) },
    ]);
    await act(p, u.owner, number, '/actions/A1/extension', { dueAt: inHours(96), reason: 'Patients unavailable' });
    await act(p, u.qa, number, '/actions/A1/extension/decision', { approve: true, reason: 'Accepted' });
    await act(p, u.owner, number, '/actions/A1/complete', { evidence: 'Re-drawn' });
    await act(p, u.tech, number, '/actions/A2/complete', { evidence: 'TR-9' });
    await waitForStage(p, u.qa, number, 'effectiveness_review');
    await act(p, u.qa, number, '/effectiveness', { results: [{ criterionId: 'C1', met: false, evidence: '5%' }], comment: 'No' });
    await act(p, u.owner, number, '/investigation', { method: 'fmea', rootCause: 'Needle gauge', findings: 'Gauge 25' });
    const plan = await act(p, u.owner, number, '/plan', {
      actions: [{ type: 'preventive', description: 'Stock gauge 21', owner: { user: u.owner.username }, dueAt: inHours(24) }],
      criteria: [{ description: 'Rate', measure: '< 2%' }],
    });
    await act(p, u.qa, number, '/plan/decision', { decision: 'approve', signature: sign(u.qa, plan.plan.contentHash) });
    await act(p, u.owner, number, '/actions/A1/complete', { evidence: 'Done' });
    await waitForStage(p, u.qa, number, 'effectiveness_review');
    const passed = await act(p, u.director, number, '/effectiveness', { results: [{ criterionId: 'C1', met: true, evidence: '1%' }] });
    await act(p, u.qa, number, '/close', { signature: sign(u.qa, passed.closureContentHash) });
    await act(p, u.qa, number, '/reopen', { reason: 'Recurred' });
    await act(p, u.qa, number, '/cancel', { reason: 'Superseded by a site-wide CAPA' });
    await waitFor(async () => (await testEnv().client.workflow.getHandle(workflowId).describe()).status.name === 'COMPLETED', 'run done');
    await save('lifecycle-loop-close-reopen-cancel', workflowId);
  });

  it('captures triage outcomes: unfounded, reopened, merged', async () => {
    const target = await createCapa(p, u.initiator);
    const { number, workflowId } = await createCapa(p, u.initiator, { sources: [{ type: 'audit_finding', id: `AF-${Date.now()}` }] });
    await act(p, u.qa, number, '/triage', { decision: 'unfounded', reason: 'In specification' });
    await act(p, u.qa, number, '/reopen', { reason: 'New data' });
    await act(p, u.qa, number, '/triage', { decision: 'merge', mergeInto: target.number, reason: 'Same problem' });
    await save('unfounded-reopened-merged', workflowId);
    await save('merge-target-in-triage', target.workflowId);
  });

  it('captures reminders, an escalation and a reassignment from a deactivated owner', async () => {
    const leaver = (await makeUsers({ leaver: ['lab_technician'] })).leaver;
    const { number, workflowId } = await createCapa(p, u.initiator);
    await toImplementation(
      p,
      { qa: u.qa, owner: leaver },
      number,
      [
        {
          type: 'corrective',
          description: 'Recalibrate',
          owner: { user: leaver.username },
          dueAt: new Date(Date.now() + 3000).toISOString(),
        },
      ],
      { ...fast, reminderBefore: '1s' },
    );
    const handle = testEnv().client.workflow.getHandle(workflowId);
    await waitFor(
      async () => ((await handle.query('capaState')) as { plan: { actions: { escalated: boolean }[] } }).plan.actions[0].escalated,
      'escalated',
      20_000,
    );
    await testEnv().db('users').where({ id: leaver.actor.userId }).update({ active: false });
    await handle.signal('userDeactivated', { userId: leaver.actor.userId, username: leaver.username });
    await waitFor(
      async () => (await testEnv().db('audit_events').where({ entity_id: number, action: 'capa.reassigned' })).length,
      'reassigned',
    );
    await save('escalated-reassigned', workflowId);
  });

  it('captures a run that continued as new (the first run) and its continuation', async () => {
    const env = testEnv();
    const started = await startCapaRun(env.client, env.db, p.taskQueue, {
      title: 'Long-lived',
      description: 'Continues as new',
      sources: [],
      initiatedBy: { userId: u.initiator.actor.userId, username: u.initiator.username },
      durations: fast,
      continueAsNewAfter: 40,
    });
    await waitForStage(p, u.qa, started.number, 'triage');
    await toImplementation(p, u, started.number, [
      { type: 'corrective', description: 'One', owner: { user: u.owner.username }, dueAt: inHours(24) },
      { type: 'preventive', description: 'Two', owner: { user: u.owner.username }, dueAt: inHours(24) },
    ]);
    const handle = env.client.workflow.getHandle(started.workflowId);
    await waitFor(async () => (await handle.describe()).runId !== started.runId, 'continued', 20_000);
    await act(p, u.owner, started.number, '/actions/A1/complete', { evidence: 'one' });
    await save('continued-as-new-first-run', started.workflowId, started.runId);
    await save('continued-as-new-second-run', started.workflowId);
  });

  it('captures granted actions and a forged triage refused by its recording step and given back', async () => {
    const { number, workflowId } = await createCapa(p, u.initiator, { sources: [{ type: 'sample', id: `ACC-${Date.now()}` }] });
    await waitForStage(p, u.qa, number, 'triage');
    const handle = testEnv().client.workflow.getHandle(workflowId);
    const forged = handle.executeUpdate(triageUpdate, {
      args: [
        {
          actor: u.qa.actor,
          grant: randomBytes(32).toString('base64url'),
          decision: 'accept',
          severity: 2,
          occurrence: 2,
          owner: { kind: 'user', userId: u.owner.actor.userId, username: u.owner.username },
        },
      ],
    });
    await forged.then(
      () => Promise.reject(new Error('a forged triage was accepted')),
      () => undefined,
    );
    await act(p, u.qa, number, '/triage', { decision: 'accept', severity: 2, occurrence: 2, owner: u.owner.username });
    await act(p, u.qa, number, '/cancel', { reason: 'Captured' });
    await waitFor(async () => (await handle.describe()).status.name === 'COMPLETED', 'run done');
    await save('granted-forgery-refused', workflowId);
  });
});
