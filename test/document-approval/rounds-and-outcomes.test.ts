import assert from 'node:assert/strict';
import { testEnv } from '../setup/env';
import { approve, createDraft, getVersion, sha256, submit, versionPath, waitForRecord, waitForState } from '../helpers/documents';
import { startPlatform, type Platform } from '../helpers/platform';
import { makeUsers, type TestUser } from '../helpers/users';
import { waitFor } from '../helpers/wait';

describe('document approval: revision rounds and other outcomes', () => {
  let p: Platform;
  let u: Record<'author' | 'rita' | 'rick' | 'rosa' | 'april' | 'control', TestUser>;

  before(async () => {
    p = await startPlatform();
    u = await makeUsers({
      author: ['author'],
      rita: ['reviewer'],
      rick: ['reviewer'],
      rosa: ['reviewer'],
      april: ['approver'],
      control: ['document_control'],
    });
  });
  after(() => p.stop());

  const stageActive = (number: string, index = 0) =>
    waitFor(
      async () => (await getVersion(p, u.author.apiKey, number, 1)).process?.stages[index].status === 'active',
      `stage ${index} active`,
    );

  it('starts a new round after a revision, voiding the earlier signatures and refusing the stale content hash', async () => {
    const { number, contentHash } = await createDraft(p, u.author, 'first text');
    await submit(p, u.author, number, 1, {
      routing: [{ name: 'Review', rule: { type: 'all' }, assignees: [{ user: u.rita.username }, { user: u.rick.username }] }],
    });
    await stageActive(number);
    assert.equal((await approve(p, u.rita, number, 1, contentHash)).status, 200);
    const changes = await p.api('POST', `${versionPath(number, 1)}/decisions`, {
      key: u.rick.apiKey,
      body: { decision: 'request_changes', comment: 'Section 4 lacks the tolerance table' },
    });
    assert.equal(changes.status, 200, JSON.stringify(changes.body));
    await waitForState(p, u.author.apiKey, number, 1, 'changes_requested');
    const authorTasks = await p.api('GET', '/api/v1/tasks?mine=1&state=open', { key: u.author.apiKey });
    assert.ok(authorTasks.body.items.some((t: { kind: string }) => t.kind === 'document.revise'));

    const revised = await p.api('POST', `${versionPath(number, 1)}/revision`, {
      key: u.author.apiKey,
      body: { content: 'second text with table' },
    });
    assert.equal(revised.status, 200, JSON.stringify(revised.body));
    assert.equal(revised.body.round, 2);
    assert.equal(revised.body.contentHash, sha256('second text with table'));
    await stageActive(number);

    const stale = await approve(p, u.rita, number, 1, contentHash);
    assert.equal(stale.status, 409);
    assert.equal(stale.body.type, 'urn:labflow:problem:stale-content-hash');

    const newHash = sha256('second text with table');
    assert.equal((await approve(p, u.rita, number, 1, newHash)).status, 200);
    assert.equal((await approve(p, u.rick, number, 1, newHash)).status, 200);
    const done = await waitForState(p, u.author.apiKey, number, 1, 'effective');
    const byRound = done.signatures.map((s: { round: number; void: boolean; username: string }) => [s.round, s.void, s.username]);
    assert.deepEqual(byRound, [
      [1, true, u.rita.username],
      [2, false, u.rita.username],
      [2, false, u.rick.username],
    ]);
    const content = await p.api('GET', `${versionPath(number, 1)}/content`, { key: u.rosa.apiKey });
    assert.equal(content.body, 'second text with table');
    assert.equal(content.headers.get('etag'), `"${newHash}"`);
  });

  it('ends a version rejected when a reviewer rejects it with a comment', async () => {
    const { number } = await createDraft(p, u.author);
    await submit(p, u.author, number, 1, { routing: [{ name: 'Review', assignees: [{ user: u.rita.username }] }] });
    await stageActive(number);
    const res = await p.api('POST', `${versionPath(number, 1)}/decisions`, {
      key: u.rita.apiKey,
      body: { decision: 'reject', comment: 'Wrong scope: belongs in WI-12' },
    });
    assert.equal(res.status, 200);
    await waitForRecord(p, u.author.apiKey, number, 1, 'rejected');
    const run = await testEnv().client.workflow.getHandle(`document-approval:${number}:v1`).result();
    assert.equal(run.state, 'rejected');
    assert.deepEqual(run.outcome, { by: u.rita.username, comment: 'Wrong scope: belongs in WI-12' });
  });

  it('lets the author withdraw a version under review, cancelling the open tasks', async () => {
    const { number } = await createDraft(p, u.author);
    await submit(p, u.author, number, 1, { routing: [{ name: 'Review', assignees: [{ user: u.rita.username }] }] });
    await stageActive(number);
    const res = await p.api('POST', `${versionPath(number, 1)}/withdraw`, {
      key: u.author.apiKey,
      body: { reason: 'Superseded by a new procedure' },
    });
    assert.equal(res.status, 200, JSON.stringify(res.body));
    assert.equal(res.body.state, 'withdrawn');
    await waitForRecord(p, u.author.apiKey, number, 1, 'withdrawn');
    const open = await testEnv()
      .db('tasks')
      .where({ workflow_id: `document-approval:${number}:v1`, state: 'open' })
      .count('* as n')
      .first();
    assert.equal(Number(open?.n), 0);
    // A new version may be opened once the withdrawn one is closed.
    const next = await p.api('POST', `/api/v1/documents/${number}/versions`, { key: u.author.apiKey, body: { content: 'fresh start' } });
    assert.equal(next.status, 201);
  });

  it('completes a k-of-n stage with k approvals and a role stage with any holder of the role', async () => {
    // A work instruction's routing template: review, then approval.
    const { number, contentHash } = await createDraft(p, u.author, undefined, 'Pipette cleaning', 'work_instruction');
    await submit(p, u.author, number, 1, {
      routing: [
        {
          name: 'Review',
          rule: { type: 'k_of_n', k: 2 },
          assignees: [{ user: u.rita.username }, { user: u.rick.username }, { user: u.rosa.username }],
        },
        { name: 'Approval', assignees: [{ role: 'approver' }] },
      ],
    });
    await stageActive(number, 0);
    assert.equal((await approve(p, u.rita, number, 1, contentHash)).status, 200);
    assert.equal((await approve(p, u.rosa, number, 1, contentHash)).status, 200);
    await stageActive(number, 1);
    const cancelled = await testEnv()
      .db('tasks')
      .where({ workflow_id: `document-approval:${number}:v1`, state: 'cancelled' })
      .pluck('task_key');
    assert.deepEqual(cancelled, [`document-approval:${number}:v1:r1:s0:user:${u.rick.username}`], "rick's slot was no longer needed");
    const approverTasks = await p.api('GET', '/api/v1/tasks?mine=1&state=open', { key: u.april.apiKey });
    assert.ok(
      approverTasks.body.items.some((t: { entity_id: string }) => t.entity_id === number),
      'role task shows in a role holder inbox',
    );
    assert.equal((await approve(p, u.april, number, 1, contentHash)).status, 200);
    await waitForState(p, u.author.apiKey, number, 1, 'effective');
  });

  it('reassigns an undecided slot to another reviewer, who can then sign', async () => {
    const { number, contentHash } = await createDraft(p, u.author);
    await submit(p, u.author, number, 1, { routing: [{ name: 'Review', assignees: [{ user: u.rita.username }] }] });
    await stageActive(number);
    const res = await p.api('POST', `${versionPath(number, 1)}/reassign`, {
      key: u.control.apiKey,
      body: { from: `user:${u.rita.username}`, to: { user: u.rosa.username }, reason: 'Rita is on leave' },
    });
    assert.equal(res.status, 200, JSON.stringify(res.body));
    assert.deepEqual(res.body.pendingAssignees, [`user:${u.rosa.username}`]);
    const refused = await approve(p, u.rita, number, 1, contentHash);
    assert.equal(refused.status, 403);
    const tasks = await testEnv()
      .db('tasks')
      .where({ workflow_id: `document-approval:${number}:v1` })
      .orderBy('created_at')
      .select('state');
    assert.deepEqual(
      tasks.map((t) => t.state),
      ['reassigned', 'open'],
    );
    assert.equal((await approve(p, u.rosa, number, 1, contentHash)).status, 200);
    await waitForState(p, u.author.apiKey, number, 1, 'effective');
  });
  it('holds a decision made while the next stage is still opening, instead of refusing it', async () => {
    const { number, contentHash } = await createDraft(p, u.author, undefined, 'Pipette cleaning', 'work_instruction');
    await submit(p, u.author, number, 1, {
      routing: [
        { name: 'Review', assignees: [{ user: u.rita.username }] },
        { name: 'Approval', assignees: [{ user: u.april.username }] },
      ],
    });
    await stageActive(number, 0);
    // April signs immediately after Rita, before the run has opened the approval stage.
    const rita = await approve(p, u.rita, number, 1, contentHash);
    const april = await approve(p, u.april, number, 1, contentHash);
    assert.equal(rita.status, 200, JSON.stringify(rita.body));
    assert.equal(april.status, 200, JSON.stringify(april.body));
    const done = await waitForState(p, u.author.apiKey, number, 1, 'effective');
    assert.deepEqual(done.signatures.map((s: { username: string }) => s.username).sort(), [u.april.username, u.rita.username].sort());
    const open = await testEnv()
      .db('tasks')
      .where({ workflow_id: `document-approval:${number}:v1`, state: 'open' })
      .count('* as n')
      .first();
    assert.equal(Number(open?.n), 0, 'the held decision closed its task');
  });
});
