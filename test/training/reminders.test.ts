import assert from 'node:assert/strict';
import { assignmentStateQuery, trainingIds } from '../../common/training';
import { approve, createDraft, submit, waitForRecord } from '../helpers/documents';
import { startPlatform, type Platform } from '../helpers/platform';
import { makeUsers, type TestUser } from '../helpers/users';
import { waitFor } from '../helpers/wait';
import { testEnv } from '../setup/env';
import { userSlot } from '../api/support';

describe('training reminders and escalation', () => {
  let p: Platform;
  let u: Record<'control' | 'rita' | 'clin' | 'qa', TestUser>;
  const db = () => testEnv().db;

  before(async () => {
    p = await startPlatform();
    u = await makeUsers({ control: ['document_control'], rita: ['approver'], clin: ['clinician'], qa: ['qa_manager'] });
  });
  after(() => p.stop());

  it('reminds the person once before the due date, then escalates to the QA managers when overdue, and records both', async () => {
    const draft = await createDraft(p, u.control, `Procedure ${Math.random()}`, 'Reporting critical values', 'form');
    await submit(p, u.control, draft.number, draft.version, {
      routing: [{ name: 'Review', rule: { type: 'all' }, assignees: [userSlot(u.rita)] }],
      training: { roles: ['clinician'], due: '40s', reminderBefore: '20s' },
    });
    await waitFor(async () => (await approve(p, u.rita, draft.number, draft.version, draft.contentHash)).status === 200, `${draft.number} approved`);
    await waitForRecord(p, u.control.apiKey, draft.number, draft.version, 'effective');

    const workflowId = trainingIds.assignment(u.clin.username, draft.number, draft.version);
    const row = () => db()('training_assignments').where({ workflow_id: workflowId }).first();
    const assigned = await waitFor(async () => ((await row())?.state === 'assigned' ? await row() : null), 'the assignment', 60_000);
    assert.equal(assigned.reminded_at, null);
    assert.equal(assigned.escalated_at, null);

    const reminded = await waitFor(async () => ((await row())?.reminded_at ? await row() : null), 'the reminder recorded', 60_000);
    assert.ok(reminded.reminded_at.getTime() < assigned.due_at.getTime(), 'reminded before the due date');
    const escalated = await waitFor(async () => ((await row())?.escalated_at ? await row() : null), 'the escalation recorded', 60_000);
    assert.ok(escalated.escalated_at.getTime() >= assigned.due_at.getTime(), 'escalated once due');
    assert.equal(escalated.state, 'assigned', 'an overdue assignment stays open for the person to sign');

    const link = `%/documents/${draft.number}/versions/${draft.version}`;
    const mine = await db()('notifications').where({ user_id: u.clin.actor.userId }).whereLike('link', link).orderBy('created_at').pluck('kind');
    assert.deepEqual(mine, ['training.assigned', 'training.reminder', 'training.overdue'].filter((k) => mine.includes(k)));
    assert.equal(mine.filter((k) => k === 'training.reminder').length, 1, 'one reminder');
    assert.equal(mine.filter((k) => k === 'training.overdue').length, 1, 'the person is told it is overdue');
    // Every clinician in the shared test database is assigned this version (other files add clinicians), and each
    // overdue assignment reaches the QA managers: count the notices about this person's.
    const qa = await db()('notifications')
      .where({ user_id: u.qa.actor.userId, kind: 'training.overdue' })
      .whereLike('link', link)
      .whereLike('title', `Overdue training: ${u.clin.username} on %`);
    assert.equal(qa.length, 1, 'the QA manager hears of it once');
    const trail = await db()('audit_events').where({ entity_type: 'training', entity_id: workflowId }).whereIn('action', ['training.reminder', 'training.overdue']).pluck('action');
    assert.deepEqual(trail.sort(), ['training.overdue', 'training.reminder']);

    const state = await testEnv().client.workflow.getHandle(workflowId).query(assignmentStateQuery);
    assert.equal(state.reminded, true);
    assert.equal(state.escalated, true);
  });
});
