import assert from 'node:assert/strict';
import { capaStateQuery } from '../../common/capa';
import { userDeactivatedSignal } from '../../common/deactivation';
import { documentStateQuery } from '../../common/document-approval';
import { testEnv } from '../setup/env';
import { approve } from '../helpers/documents';
import { startPlatform, type Platform } from '../helpers/platform';
import { makeUsers, type TestUser } from '../helpers/users';
import { waitFor } from '../helpers/wait';
import { oneStage, underReview } from '../api/support';
import { act, createCapa, fast } from '../capa/support';

/** Deactivation through the API hands a person's open work over in each process, end to end on real runs. */
describe('deactivating a user hands their open work over', () => {
  let p: Platform;
  let u: Record<'admin' | 'author' | 'leaver' | 'rita' | 'control' | 'qa' | 'initiator', TestUser>;

  before(async () => {
    p = await startPlatform();
    u = await makeUsers({
      admin: ['admin'],
      author: ['author'],
      leaver: ['reviewer', 'lab_technician'],
      rita: ['reviewer'],
      control: ['document_control'],
      qa: ['qa_manager'],
      initiator: ['lab_technician'],
    });
  });
  after(() => p.stop());

  const db = () => testEnv().db;
  const deactivate = (who: TestUser) =>
    p.api('POST', `/api/v1/users/${who.username}/deactivate`, { key: u.admin.apiKey, body: { password: u.admin.password, reason: 'left the lab' } });

  it('moves review slots to document control and CAPA work to the QA manager, with tasks, audit and nothing forged', async () => {
    const routing = oneStage([u.leaver, u.rita]);
    const v = await underReview(p, u.author, routing);
    const docRun = testEnv().client.workflow.getHandle(v.workflowId);
    const { number } = await createCapa(p, u.initiator);
    await act(p, u.qa, number, '/triage', { decision: 'accept', severity: 2, occurrence: 2, owner: u.leaver.username, durations: fast });
    const capaRun = testEnv().client.workflow.getHandle(`capa:${number}`);

    // Told while the user is still active, the run hands nothing over and the attempt is a security event.
    await docRun.signal(userDeactivatedSignal, { userId: u.leaver.actor.userId, username: u.leaver.username });
    await waitFor(
      async () =>
        (await db()('audit_events').where({ action: 'security.grant_refused', entity_id: v.number })).find(
          (e) => e.details.attempted === 'document.user_deactivated_signal',
        ),
      'the forged notice refused',
    );
    assert.equal((await docRun.query(documentStateQuery)).stages[0].slots[0].assignee.kind, 'user');

    const res = await deactivate(u.leaver);
    assert.equal(res.status, 200, JSON.stringify(res.body));
    assert.ok(res.body.handedOver.document.includes(v.workflowId));
    assert.deepEqual(res.body.handedOver.capa, [`capa:${number}`]);

    const state = await waitFor(async () => {
      const s = await docRun.query(documentStateQuery);
      return s.stages[0].slots[0].assignee.kind === 'role' ? s : null;
    }, 'the review slot handed over');
    assert.deepEqual(state.stages[0].slots[0].assignee, { kind: 'role', role: 'document_control' });
    assert.ok(state.pendingAssignees.includes('role:document_control'));
    const tasks = await db()('tasks').where({ workflow_id: v.workflowId, kind: 'document.review' }).orderBy('created_at');
    assert.deepEqual(
      tasks.filter((t) => t.assignee_user_id === u.leaver.actor.userId).map((t) => t.state),
      ['reassigned'],
    );
    assert.equal(tasks.filter((t) => t.assignee_role === 'document_control' && t.state === 'open').length, 1);
    const audit = await db()('audit_events').where({ entity_id: v.number, action: 'document.stage_reassigned' }).orderBy('seq');
    assert.deepEqual(
      audit.map((e) => [e.details.stage, e.details.from, e.details.to, e.details.reason]),
      [['Review', `user:${u.leaver.username}`, 'role:document_control', 'user deactivated']],
    );
    const told = await db()('notifications').where({ user_id: u.control.actor.userId, kind: 'document.review_requested' });
    assert.ok(told.some((n) => n.title.startsWith('Review handed over')), 'document control is told');

    // Document control now decides the slot the leaver held.
    const decided = await approve(p, u.control, v.number, v.version, v.contentHash);
    assert.equal(decided.status, 200, JSON.stringify(decided.body));

    const capa = await waitFor(async () => {
      const s = await capaRun.query(capaStateQuery);
      return s.owner?.kind === 'user' && s.owner.userId === u.qa.actor.userId ? s : null;
    }, 'the CAPA handed to its QA manager');
    assert.equal(capa.reassignments[0].from, `user:${u.leaver.username}`);
  });
});
