import assert from 'node:assert/strict';
import { openCapaForSource, startCapaRun } from '../../api/temporal/capa';
import { capaStateQuery, cancelCapaUpdate } from '../../common/capa';
import { testEnv } from '../setup/env';
import { startPlatform, type Platform } from '../helpers/platform';
import { makeUsers, type TestUser } from '../helpers/users';
import { waitFor } from '../helpers/wait';
import { act, capaPath, createCapa, fast, getCapa, inHours, sign, toImplementation, waitForStage } from './support';

describe('CAPA refusals, deadlines, reassignment and continue-as-new', () => {
  let p: Platform;
  let u: Record<'qa' | 'owner' | 'tech' | 'initiator', TestUser>;
  before(async () => {
    p = await startPlatform();
    u = await makeUsers({ qa: ['qa_manager'], owner: ['lab_technician'], tech: ['lab_technician'], initiator: ['clinician'] });
  });
  after(() => p.stop());

  const problem = async (by: TestUser, number: string, path: string, body: unknown, status: number, type: string) => {
    const res = await p.api('POST', `${capaPath(number)}${path}`, { key: by.apiKey, body });
    assert.equal(res.status, status, `${path}: ${JSON.stringify(res.body)}`);
    assert.equal(res.body.type, `urn:labflow:problem:${type}`, JSON.stringify(res.body));
    return res.body;
  };

  it('refuses each illegal action with a clear 4xx and leaves the CAPA as it was', async () => {
    const { number } = await createCapa(p, u.initiator);
    // Wrong role: the route's role check, and the run's own check for a role the route lets through (admin aside).
    await problem(
      u.owner,
      number,
      '/triage',
      { decision: 'accept', severity: 3, occurrence: 3, owner: u.owner.username },
      403,
      'forbidden',
    );
    // Wrong stage.
    await problem(u.owner, number, '/containment', { summary: 'Too early' }, 409, 'wrong-stage');
    // Cancelling without a reason: the schema answers 400, and the run itself refuses a blank one (422).
    await problem(u.qa, number, '/cancel', {}, 400, 'validation');
    await assert.rejects(
      testEnv()
        .client.workflow.getHandle(`capa:${number}`)
        .executeUpdate(cancelCapaUpdate, { args: [{ actor: u.qa.actor, grant: 'g'.repeat(43), reason: '  ' }] }),
      (err: Error & { cause?: { type?: string } }) => err.cause?.type === 'InvalidInput',
    );

    await toImplementation(p, u, number, [
      { type: 'corrective', description: 'Fix the centrifuge', owner: { user: u.owner.username }, dueAt: inHours(24) },
    ]);
    // Closing with open actions.
    const state = await getCapa(p, u.qa, number);
    await problem(u.qa, number, '/close', { signature: sign(u.qa, 'a'.repeat(64)) }, 409, 'actions-open');
    // Extensions: limit of 2 (the default), each approved by QA with a reason.
    for (let i = 1; i <= 2; i++) {
      await act(p, u.owner, number, '/actions/A1/extension', { dueAt: inHours(24 + i * 24), reason: `Parts delayed ${i}` });
      await problem(u.owner, number, '/actions/A1/extension', { dueAt: inHours(200), reason: 'again' }, 409, 'duplicate-decision');
      await problem(u.owner, number, '/actions/A1/extension/decision', { approve: true, reason: 'ok' }, 403, 'forbidden');
      const granted = await act(p, u.qa, number, '/actions/A1/extension/decision', { approve: true, reason: 'Supplier letter on file' });
      assert.equal(granted.plan.actions[0].extensions, i);
    }
    await problem(u.owner, number, '/actions/A1/extension', { dueAt: inHours(500), reason: 'third' }, 409, 'extension-limit');
    const task = await testEnv().db('tasks').where({ entity_id: number, kind: 'capa.action', state: 'open' }).first();
    assert.equal(
      new Date(task.due_at).toISOString(),
      (await getCapa(p, u.qa, number)).process.plan.actions[0].dueAt,
      'the task follows the new due date',
    );

    await act(p, u.owner, number, '/actions/A1/complete', { evidence: 'Centrifuge serviced' });
    // Closing before the effectiveness check.
    await problem(u.qa, number, '/close', { signature: sign(u.qa, 'a'.repeat(64)) }, 409, 'effectiveness-missing');
    await waitForStage(p, u.qa, number, 'effectiveness_review');
    // The implementer cannot verify their own work, even holding the right role.
    await problem(u.owner, number, '/effectiveness', { results: [{ criterionId: 'C1', met: true, evidence: 'x' }] }, 403, 'forbidden');
    assert.equal(state.stage, 'implementation');
  });

  it('refuses a verifier who implemented an action, whatever their role', async () => {
    const { number } = await createCapa(p, u.initiator);
    // The QA manager owns an action (held by the role, completed by them): they may not verify.
    await toImplementation(p, u, number, [
      { type: 'correction', description: 'Update the SOP', owner: { role: 'qa_manager' }, dueAt: inHours(24) },
    ]);
    await act(p, u.qa, number, '/actions/A1/complete', { evidence: 'SOP-12 v4' });
    await waitForStage(p, u.qa, number, 'effectiveness_review');
    const body = await problem(
      u.qa,
      number,
      '/effectiveness',
      { results: [{ criterionId: 'C1', met: true, evidence: 'ok' }] },
      403,
      'forbidden',
    );
    assert.match(body.detail, /implemented A1/);
  });

  it('offers "link to existing" when an open CAPA names the same source, and links it instead of a duplicate', async () => {
    const source = { type: 'sample' as const, id: `ACC-${Date.now()}` };
    const first = await createCapa(p, u.initiator, { sources: [source] });
    const res = await p.api('POST', '/api/v1/capas', {
      key: u.tech.apiKey,
      body: { title: 'Again', description: 'Same sample', sources: [source] },
    });
    assert.equal(res.status, 409);
    assert.equal(res.body.existing[0].number, first.number);
    assert.equal(res.body.existing[0].link, `/api/v1/capas/${first.number}/sources`);
    const other = { type: 'nonconformance', id: `NC-${Date.now()}` };
    // Only the CAPA's owner or QA may link (this one has no owner yet): anyone else is refused before anything is written.
    const refused = await act(p, u.tech, first.number, '/sources', { sources: [other] }, 403);
    assert.equal(refused.type, 'urn:labflow:problem:forbidden');
    const linked = await act(p, u.qa, first.number, '/sources', { sources: [other] });
    assert.equal(linked.sources.length, 2);

    // The helper for other processes: the same source links (as QA, who may), a new one opens a CAPA.
    const env = testEnv();
    const again = await openCapaForSource(env.client, env.db, p.taskQueue, {
      source,
      title: 'Rejected sample',
      description: 'Rejected at intake',
      initiatedBy: { userId: u.qa.actor.userId, username: u.qa.username },
    });
    assert.deepEqual([again.number, again.linked], [first.number, true]);
    const fresh = await openCapaForSource(env.client, env.db, p.taskQueue, {
      source: { type: 'sample', id: `ACC-NEW-${Date.now()}` },
      title: 'Rejected sample',
      description: 'Rejected at intake',
      initiatedBy: { userId: u.tech.actor.userId, username: u.tech.username },
    });
    assert.equal(fresh.linked, false);
    assert.notEqual(fresh.number, first.number);
    await waitFor(
      async () => (await testEnv().db('capa_sources').where({ capa_number: fresh.number })).length === 1,
      'the new CAPA source',
    );
  });

  it('reminds before an action is due, escalates to the triaging QA manager when overdue, and lists it as overdue', async () => {
    const { number } = await createCapa(p, u.initiator);
    await toImplementation(
      p,
      u,
      number,
      [
        {
          type: 'corrective',
          description: 'Replace tubes',
          owner: { user: u.owner.username },
          // Far enough ahead for the plan's signed approval on a slow machine, and the reminder window with it.
          dueAt: new Date(Date.now() + 30_000).toISOString(),
        },
      ],
      { ...fast, reminderBefore: '15s' },
    );
    // The run marks the escalation before its step commits; the audit event says the step is written.
    await waitFor(
      async () => (await testEnv().db('audit_events').where({ entity_id: number, action: 'capa.overdue' })).length,
      'escalation',
      90_000,
    );
    const notes = await testEnv().db('notifications').where({ kind: 'capa.overdue' }).whereLike('title', `%${number}%`).pluck('user_id');
    assert.ok(notes.includes(u.qa.actor.userId), 'the QA manager who triaged it hears of it');
    assert.ok(notes.includes(u.owner.actor.userId));
    const reminders = await testEnv()
      .db('notifications')
      .where({ kind: 'capa.reminder', user_id: u.owner.actor.userId })
      .whereLike('title', `%${number}%`);
    assert.equal(reminders.length, 1);
    const list = await p.api('GET', '/api/v1/capas?overdue=1&stage=implementation&limit=200', { key: u.qa.apiKey });
    assert.ok(list.body.items.some((c: { number: string; overdue: boolean }) => c.number === number && c.overdue));
    const byOwner = await p.api('GET', `/api/v1/capas?owner=${u.owner.username}&risk=medium&limit=200`, { key: u.qa.apiKey });
    assert.ok(byOwner.body.items.some((c: { number: string }) => c.number === number));
  });

  it('hands a deactivated owner’s CAPA and actions to the QA manager and records it', async () => {
    const [leaver] = Object.values(await makeUsers({ leaver: ['lab_technician'] }));
    const admin = (await makeUsers({ admin: ['admin'] })).admin;
    const { number } = await createCapa(p, u.initiator);
    await toImplementation(p, { qa: u.qa, owner: leaver }, number, [
      { type: 'corrective', description: 'Recalibrate', owner: { user: leaver.username }, dueAt: inHours(24) },
    ]);
    const early = await p.api('POST', '/api/v1/capas/deactivated-users', { key: admin.apiKey, body: { username: leaver.username } });
    assert.equal(early.status, 409, 'an active user is not handed over');
    await testEnv().db('users').where({ id: leaver.actor.userId }).update({ active: false });
    const res = await p.api('POST', '/api/v1/capas/deactivated-users', { key: admin.apiKey, body: { username: leaver.username } });
    assert.equal(res.status, 202);
    assert.ok(res.body.notified.includes(`capa:${number}`));
    const after = await waitFor(async () => {
      const c = await getCapa(p, u.qa, number);
      return c.process.plan.actions[0].owner.kind === 'user' && c.process.plan.actions[0].owner.userId === u.qa.actor.userId ? c : null;
    }, 'reassignment');
    await waitFor(
      async () => (await testEnv().db('audit_events').where({ entity_id: number, action: 'capa.reassigned' })).length,
      'the reassignment recorded',
    );
    assert.equal(after.process.owner.userId, u.qa.actor.userId);
    assert.equal(after.process.reassignments.length, 2);
    const tasks = await testEnv().db('tasks').where({ entity_id: number, kind: 'capa.action' }).orderBy('created_at');
    assert.deepEqual(
      tasks.map((t) => t.state),
      ['reassigned', 'open'],
    );
    assert.equal(tasks[1].assignee_user_id, u.qa.actor.userId);
    const audit = await testEnv().db('audit_events').where({ entity_id: number, action: 'capa.reassigned' });
    assert.equal(audit.length, 1);
  });

  it('continues as new before its history grows large and carries on where it was', async () => {
    const env = testEnv();
    const started = await startCapaRun(env.client, env.db, p.taskQueue, {
      title: 'Long-lived CAPA',
      description: 'Continues as new',
      sources: [],
      initiatedBy: { userId: u.initiator.actor.userId, username: u.initiator.username },
      durations: fast,
      continueAsNewAfter: 40,
    });
    const { number } = started;
    await waitForStage(p, u.qa, number, 'triage');
    await toImplementation(p, u, number, [
      { type: 'corrective', description: 'Step one', owner: { user: u.owner.username }, dueAt: inHours(24) },
      { type: 'preventive', description: 'Step two', owner: { user: u.owner.username }, dueAt: inHours(24) },
    ]);
    const handle = env.client.workflow.getHandle(`capa:${number}`);
    await waitFor(async () => (await handle.describe()).runId !== started.runId, 'a continued run', 20_000);
    const state = await handle.query(capaStateQuery);
    assert.equal(state.stage, 'implementation', 'the new run has the state of the old');
    await act(p, u.owner, number, '/actions/A1/complete', { evidence: 'one' });
    await act(p, u.owner, number, '/actions/A2/complete', { evidence: 'two' });
    await waitForStage(p, u.qa, number, 'effectiveness_review');
    const passed = await act(p, u.qa, number, '/effectiveness', { results: [{ criterionId: 'C1', met: true, evidence: 'ok' }] });
    const closed = await act(p, u.qa, number, '/close', { signature: sign(u.qa, passed.closureContentHash) });
    assert.equal(closed.stage, 'closed');
    const first = await env.client.workflow.getHandle(`capa:${number}`, started.runId).describe();
    assert.equal(first.status.name, 'CONTINUED_AS_NEW');
  });
});
