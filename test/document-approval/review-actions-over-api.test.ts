import assert from 'node:assert/strict';
import { getVersion, waitForRecord } from '../helpers/documents';
import { startPlatform, type Platform } from '../helpers/platform';
import { makeUsers, type TestUser } from '../helpers/users';
import { testEnv } from '../setup/env';
import { assertProblem, oneStage, refused, underReview } from '../api/support';

const hours = (n: number) => n * 3_600_000;

describe('withdraw, reassign, extend and revise refused over the API', () => {
  let p: Platform;
  let u: Record<'author' | 'rita' | 'rick' | 'control' | 'admin', TestUser>;

  before(async () => {
    p = await startPlatform();
    u = await makeUsers({
      author: ['author'],
      rita: ['reviewer'],
      rick: ['reviewer'],
      control: ['document_control'],
      admin: ['admin'],
    });
  });
  after(() => p.stop());

  const act = (who: TestUser, path: string, action: string, body: unknown) => p.api('POST', `${path}/${action}`, { key: who.apiKey, body });

  describe('withdraw', () => {
    it('answers 403 to a withdrawal by someone who is neither the author nor document control', async () => {
      const v = await underReview(p, u.author, oneStage([u.rita]));
      const res = await refused(() => act(u.rita, v.path, 'withdraw', { reason: 'I would rather not review it' }), {
        runs: [v.workflowId],
      });
      assertProblem(res, 403, 'forbidden');
      assert.equal((await getVersion(p, u.author.apiKey, v.number, v.version)).state, 'in_review');
    });

    it('refuses a withdrawal without a reason', async () => {
      const v = await underReview(p, u.author, oneStage([u.rita]));
      assertProblem(await refused(() => act(u.author, v.path, 'withdraw', {}), { runs: [v.workflowId] }), 400, 'validation', 'body.reason');
      assertProblem(
        await refused(() => act(u.author, v.path, 'withdraw', { reason: ' ' }), { runs: [v.workflowId] }),
        400,
        'validation',
        'body.reason',
      );
    });

    it('lets document control withdraw a version it did not write, and closes its tasks', async () => {
      const v = await underReview(p, u.author, oneStage([u.rita]));
      const res = await act(u.control, v.path, 'withdraw', { reason: 'superseded by a new template' });
      assert.equal(res.status, 200, JSON.stringify(res.body));
      assert.equal(res.body.state, 'withdrawn');
      await waitForRecord(p, u.author.apiKey, v.number, v.version, 'withdrawn');
      assert.equal((await testEnv().db('tasks').where({ workflow_id: v.workflowId, state: 'open' })).length, 0);
    });
  });

  describe('reassign', () => {
    it('refuses a reassignment without a reason', async () => {
      const v = await underReview(p, u.author, oneStage([u.rita]));
      const body = { from: `user:${u.rita.username}`, to: { user: u.rick.username } };
      assertProblem(
        await refused(() => act(u.control, v.path, 'reassign', body), { runs: [v.workflowId] }),
        400,
        'validation',
        'body.reason',
      );
      assertProblem(
        await refused(() => act(u.control, v.path, 'reassign', { ...body, reason: '' }), { runs: [v.workflowId] }),
        400,
        'validation',
        'body.reason',
      );
    });

    it('answers 403 to a reassignment by someone outside document control', async () => {
      const v = await underReview(p, u.author, oneStage([u.rita]));
      const body = { from: `user:${u.rita.username}`, to: { user: u.rick.username }, reason: 'Rita is away' };
      assertProblem(await refused(() => act(u.author, v.path, 'reassign', body), { runs: [v.workflowId] }), 403, 'forbidden');
    });

    it('answers 422 to a reassignment from someone who holds no slot, or to the author', async () => {
      const v = await underReview(p, u.author, oneStage([u.rita]));
      const fromNobody = { from: `user:${u.rick.username}`, to: { user: u.control.username }, reason: 'Rick is away' };
      assertProblem(await refused(() => act(u.control, v.path, 'reassign', fromNobody), { runs: [v.workflowId] }), 422, 'invalid-input');
      const toAuthor = { from: `user:${u.rita.username}`, to: { user: u.author.username }, reason: 'the author knows it best' };
      assertProblem(await refused(() => act(u.control, v.path, 'reassign', toAuthor), { runs: [v.workflowId] }), 422, 'invalid-input');
    });

    it('answers 422 unknown-user to a reassignment to someone who does not exist', async () => {
      const v = await underReview(p, u.author, oneStage([u.rita]));
      const body = { from: `user:${u.rita.username}`, to: { user: 'no.such.person' }, reason: 'Rita is away' };
      assertProblem(
        await refused(() => act(u.control, v.path, 'reassign', body), { runs: [v.workflowId] }),
        422,
        'unknown-user',
        'body.to',
      );
    });

    it('refuses a slot that is not written as user:<name> or role:<role>', async () => {
      const v = await underReview(p, u.author, oneStage([u.rita]));
      const body = { from: u.rita.username, to: { user: u.rick.username }, reason: 'Rita is away' };
      assertProblem(
        await refused(() => act(u.control, v.path, 'reassign', body), { runs: [v.workflowId] }),
        400,
        'validation',
        'body.from',
      );
    });

    it('hands a slot to someone else when document control gives a reason', async () => {
      const v = await underReview(p, u.author, oneStage([u.rita]));
      const body = { from: `user:${u.rita.username}`, to: { user: u.rick.username }, reason: 'Rita is on leave' };
      const res = await act(u.control, v.path, 'reassign', body);
      assert.equal(res.status, 200, JSON.stringify(res.body));
      assert.deepEqual(res.body.pendingAssignees, [`user:${u.rick.username}`]);
      const tasks = await testEnv()
        .db('tasks')
        .where({ workflow_id: v.workflowId })
        .orderBy('created_at')
        .select('state', 'assignee_user_id');
      assert.deepEqual(
        tasks.map((t) => [t.state, t.assignee_user_id]),
        [
          ['reassigned', u.rita.actor.userId],
          ['open', u.rick.actor.userId],
        ],
      );
    });
  });

  describe('extend', () => {
    it('refuses an extension without a reason', async () => {
      const v = await underReview(p, u.author, oneStage([u.rita]));
      const dueAt = new Date(Date.now() + hours(200)).toISOString();
      assertProblem(
        await refused(() => act(u.control, v.path, 'extend', { dueAt }), { runs: [v.workflowId] }),
        400,
        'validation',
        'body.reason',
      );
    });

    it('answers 422 to an extension to an earlier date', async () => {
      const v = await underReview(p, u.author, oneStage([u.rita]));
      const current = Date.parse((await getVersion(p, u.author.apiKey, v.number, v.version)).dueAt);
      const earlier = new Date(current - hours(1)).toISOString();
      const res = await refused(() => act(u.control, v.path, 'extend', { dueAt: earlier, reason: 'more time' }), { runs: [v.workflowId] });
      assertProblem(res, 422, 'invalid-input');
      const past = new Date(Date.now() - hours(1)).toISOString();
      assertProblem(
        await refused(() => act(u.control, v.path, 'extend', { dueAt: past, reason: 'more time' }), { runs: [v.workflowId] }),
        422,
        'invalid-input',
      );
    });

    it('refuses a due date that is not a date-time', async () => {
      const v = await underReview(p, u.author, oneStage([u.rita]));
      const res = await refused(() => act(u.control, v.path, 'extend', { dueAt: 'next Friday', reason: 'more time' }), {
        runs: [v.workflowId],
      });
      assertProblem(res, 400, 'validation', 'body.dueAt');
    });

    it('answers 403 to an extension by someone outside document control', async () => {
      const v = await underReview(p, u.author, oneStage([u.rita]));
      const dueAt = new Date(Date.now() + hours(200)).toISOString();
      assertProblem(
        await refused(() => act(u.rita, v.path, 'extend', { dueAt, reason: 'I need more time' }), { runs: [v.workflowId] }),
        403,
        'forbidden',
      );
    });

    it('moves the due date later when document control gives a reason', async () => {
      const v = await underReview(p, u.author, oneStage([u.rita]));
      const dueAt = new Date(Date.now() + hours(200)).toISOString();
      const res = await act(u.control, v.path, 'extend', { dueAt, reason: 'audit week' });
      assert.equal(res.status, 200, JSON.stringify(res.body));
      assert.equal(res.body.dueAt, dueAt);
      const task = await testEnv().db('tasks').where({ workflow_id: v.workflowId, state: 'open' }).first('due_at');
      assert.equal(task.due_at.toISOString(), dueAt);
    });
  });

  describe('revision', () => {
    it('answers 409 to a revision upload when no changes were requested', async () => {
      const v = await underReview(p, u.author, oneStage([u.rita]));
      const res = await refused(() => act(u.author, v.path, 'revision', { content: 'improved text' }), { runs: [v.workflowId] });
      assertProblem(res, 409, 'wrong-stage');
    });

    it('refuses a revision by anyone but the author, and one that changes nothing', async () => {
      const content = `SOP text ${Math.random()}`;
      const v = await underReview(p, u.author, oneStage([u.rita]), content);
      const asked = await act(u.rita, v.path, 'decisions', { decision: 'request_changes', comment: 'name the pipette model' });
      assert.equal(asked.status, 200, JSON.stringify(asked.body));
      await waitForRecord(p, u.author.apiKey, v.number, v.version, 'changes_requested');
      assertProblem(
        await refused(() => act(u.control, v.path, 'revision', { content: 'rewritten by someone else' }), { runs: [v.workflowId] }),
        403,
        'forbidden',
      );
      assertProblem(await refused(() => act(u.author, v.path, 'revision', { content }), { runs: [v.workflowId] }), 422, 'invalid-input');
      assertProblem(
        await refused(() => act(u.author, v.path, 'revision', { content: '' }), { runs: [v.workflowId] }),
        400,
        'validation',
        'body.content',
      );
    });
  });

  describe('effective-only actions', () => {
    it('answers 409 to retiring or reviewing a version still in review, and 400 without a reason', async () => {
      const v = await underReview(p, u.author, oneStage([u.rita]));
      assertProblem(
        await refused(() => act(u.control, v.path, 'obsolete', { reason: 'no longer used' }), { runs: [v.workflowId] }),
        409,
        'wrong-stage',
      );
      assertProblem(
        await refused(() => act(u.control, v.path, 'periodic-review', { comment: 'still fine' }), { runs: [v.workflowId] }),
        409,
        'wrong-stage',
      );
      assertProblem(
        await refused(() => act(u.control, v.path, 'obsolete', {}), { runs: [v.workflowId] }),
        400,
        'validation',
        'body.reason',
      );
    });
  });
});
