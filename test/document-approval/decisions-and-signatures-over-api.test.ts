import assert from 'node:assert/strict';
import { approve, createDraft, sha256, versionPath, waitForRecord } from '../helpers/documents';
import { startPlatform, type Platform } from '../helpers/platform';
import { makeUsers, type TestUser } from '../helpers/users';
import { testEnv } from '../setup/env';
import { assertProblem, latestAudit, oneStage, refused, underReview } from '../api/support';

describe('decisions and electronic signatures refused over the API', () => {
  let p: Platform;
  let u: Record<'author' | 'rita' | 'rick' | 'outsider' | 'locker' | 'control' | 'admin' | 'selfish', TestUser>;

  before(async () => {
    p = await startPlatform();
    u = await makeUsers({
      author: ['author'],
      rita: ['reviewer'],
      rick: ['reviewer'],
      outsider: ['reviewer'],
      locker: ['approver'],
      control: ['document_control'],
      admin: ['admin'],
      selfish: ['author', 'reviewer'],
    });
  });
  after(() => p.stop());

  const decide = (signer: TestUser, path: string, body: Record<string, unknown>) =>
    p.api('POST', `${path}/decisions`, { key: signer.apiKey, body });
  const signature = (signer: TestUser, contentHash: string, password = signer.password) => ({
    password,
    meaning: 'approval',
    contentHash,
  });

  it('refuses a decision by someone who is not an assignee, and writes no signature', async () => {
    const v = await underReview(p, u.author, oneStage([u.rita]));
    const res = await refused(() => approve(p, u.outsider, v.number, v.version, v.contentHash), { runs: [v.workflowId] });
    assertProblem(res, 403, 'not-assignee');
    const rejected = await refused(() => decide(u.outsider, v.path, { decision: 'reject', comment: 'not mine to judge' }), {
      runs: [v.workflowId],
    });
    assertProblem(rejected, 403, 'not-assignee');
  });

  it('refuses a second decision by the same reviewer', async () => {
    const v = await underReview(p, u.author, oneStage([u.rita, u.rick]));
    const first = await approve(p, u.rita, v.number, v.version, v.contentHash);
    assert.equal(first.status, 200, JSON.stringify(first.body));
    const again = await refused(() => approve(p, u.rita, v.number, v.version, v.contentHash), { runs: [v.workflowId] });
    assertProblem(again, 409, 'duplicate-decision');
    const changedMind = await refused(() => decide(u.rita, v.path, { decision: 'reject', comment: 'on second thoughts, no' }), {
      runs: [v.workflowId],
    });
    assertProblem(changedMind, 409, 'duplicate-decision');
    const signatures = await testEnv().db('signatures').where({ workflow_id: v.workflowId });
    assert.equal(signatures.length, 1);
  });

  it('refuses a decision on a run that has finished', async () => {
    const v = await underReview(p, u.author, oneStage([u.rita, u.rick]));
    const rejected = await decide(u.rita, v.path, { decision: 'reject', comment: 'wrong pipette model throughout' });
    assert.equal(rejected.status, 200, JSON.stringify(rejected.body));
    await waitForRecord(p, u.author.apiKey, v.number, v.version, 'rejected');
    const res = await refused(() => approve(p, u.rick, v.number, v.version, v.contentHash), { runs: [v.workflowId] });
    assertProblem(res, 409, 'run-finished');
    assert.equal((await testEnv().db('signatures').where({ workflow_id: v.workflowId })).length, 0);
  });

  it('refuses a decision on a run an operator terminated, with a 409 rather than a 500', async () => {
    const v = await underReview(p, u.author, oneStage([u.rita]));
    await testEnv().client.workflow.getHandle(v.workflowId).terminate('stuck run cleared from the Web UI');
    const res = await refused(() => decide(u.rita, v.path, { decision: 'request_changes', comment: 'fix section 2' }), {
      runs: [v.workflowId],
    });
    assertProblem(res, 409, 'run-finished');
  });

  it('refuses a decision on a version that has not been submitted', async () => {
    const draft = await createDraft(p, u.author);
    const res = await refused(() => approve(p, u.rita, draft.number, draft.version, draft.contentHash));
    assertProblem(res, 409, 'not-submitted');
  });

  it('answers 403 to a wrong signing password, and records the rejection in the audit trail', async () => {
    const v = await underReview(p, u.author, oneStage([u.rita]));
    const wrong = 'not-my-password';
    const res = await refused(() => approve(p, u.rita, v.number, v.version, v.contentHash, wrong), {
      runs: [v.workflowId],
      auditEvents: 1,
    });
    assertProblem(res, 403, 'signature-password-invalid');
    assert.match(res.body.detail, /2 attempt\(s\) left/);
    const [event] = await latestAudit(1);
    assert.equal(event.action, 'signature.password_rejected');
    assert.equal(event.actor, u.rita.username);
    assert.equal(event.entity_type, 'document');
    assert.equal(event.entity_id, v.number);
    assert.equal(event.details.consecutiveFailures, 1);
    assert.ok(!JSON.stringify(event).includes(wrong), 'the password is not in the audit trail');
    const trail = await p.api('GET', `/api/v1/documents/${v.number}/audit`, { key: u.control.apiKey });
    assert.ok(trail.body.items.some((e: { action: string }) => e.action === 'signature.password_rejected'));

    // The right password afterwards signs, and starts the count again.
    const signed = await approve(p, u.rita, v.number, v.version, v.contentHash);
    assert.equal(signed.status, 200, JSON.stringify(signed.body));
    assert.equal((await testEnv().db('users').where({ username: u.rita.username }).first('signing_failures')).signing_failures, 0);
  });

  it('locks signing after the third wrong password: the next attempt answers 423 with Retry-After, even with the right password', async () => {
    const v = await underReview(p, u.author, oneStage([u.locker]));
    const attempt = (password: string, auditEvents: number) =>
      refused(() => approve(p, u.locker, v.number, v.version, v.contentHash, password), { runs: [v.workflowId], auditEvents });

    assertProblem(await attempt('guess-one', 1), 403, 'signature-password-invalid');
    assertProblem(await attempt('guess-two', 1), 403, 'signature-password-invalid');
    const third = await attempt('guess-three', 2);
    assertProblem(third, 403, 'signature-password-invalid');
    assert.match(third.body.detail, /locked until/);

    const locked = await attempt(u.locker.password, 0);
    assertProblem(locked, 423, 'signing-locked');
    const retryAfter = Number(locked.headers.get('retry-after'));
    assert.ok(retryAfter > 0 && retryAfter <= 60, `Retry-After ${locked.headers.get('retry-after')}`);

    const trail = await testEnv()
      .db('audit_events')
      .where({ actor: u.locker.username })
      .whereIn('action', ['signature.password_rejected', 'signature.signing_locked'])
      .orderBy('seq')
      .select('action', 'entity_type', 'entity_id', 'details');
    assert.deepEqual(
      trail.map((e) => e.action),
      ['signature.password_rejected', 'signature.password_rejected', 'signature.password_rejected', 'signature.signing_locked'],
    );
    assert.deepEqual(
      trail.slice(0, 3).map((e) => e.details.consecutiveFailures),
      [1, 2, 3],
    );
    assert.equal(trail[3].entity_type, 'user');
    assert.equal(trail[3].entity_id, u.locker.username);
    assert.ok(Date.parse(trail[3].details.lockedUntil) > Date.now());
    assert.equal((await testEnv().db('signatures').where({ workflow_id: v.workflowId })).length, 0);
  });

  it('refuses a signature over content that is no longer the version under review', async () => {
    const v = await underReview(p, u.author, oneStage([u.rick]));
    const stale = sha256('the text as it was last week');
    const res = await refused(() => decide(u.rick, v.path, { decision: 'approve', signature: signature(u.rick, stale) }), {
      runs: [v.workflowId],
    });
    assertProblem(res, 409, 'stale-content-hash');
    assert.match(res.body.detail, new RegExp(v.contentHash));
  });

  it('refuses a rejection or a request for changes without a comment', async () => {
    const v = await underReview(p, u.author, oneStage([u.rick]));
    const runs = [v.workflowId];
    assertProblem(await refused(() => decide(u.rick, v.path, { decision: 'reject' }), { runs }), 400, 'validation', 'body.comment');
    assertProblem(
      await refused(() => decide(u.rick, v.path, { decision: 'reject', comment: '   ' }), { runs }),
      400,
      'validation',
      'body.comment',
    );
    assertProblem(
      await refused(() => decide(u.rick, v.path, { decision: 'request_changes' }), { runs }),
      400,
      'validation',
      'body.comment',
    );
  });

  it('refuses an approval that is not signed, or signed with an unknown meaning or a malformed hash', async () => {
    const v = await underReview(p, u.author, oneStage([u.rick]));
    const runs = [v.workflowId];
    assertProblem(await refused(() => decide(u.rick, v.path, { decision: 'approve' }), { runs }), 400, 'validation', 'body.signature');
    const meaning = { ...signature(u.rick, v.contentHash), meaning: 'because' };
    assertProblem(
      await refused(() => decide(u.rick, v.path, { decision: 'approve', signature: meaning }), { runs }),
      400,
      'validation',
      'body.signature.meaning',
    );
    assertProblem(
      await refused(() => decide(u.rick, v.path, { decision: 'approve', signature: signature(u.rick, 'abc123') }), { runs }),
      400,
      'validation',
      'body.signature.contentHash',
    );
    assertProblem(
      await refused(() => decide(u.rick, v.path, { decision: 'approve', signature: signature(u.rick, v.contentHash, '') }), { runs }),
      400,
      'validation',
      'body.signature.password',
    );
    assertProblem(
      await refused(() => decide(u.rick, v.path, { decision: 'sign_off', comment: 'fine' }), { runs }),
      400,
      'validation',
      'body.decision',
    );
  });

  it('refuses the author approving their own version through a role slot they hold', async () => {
    const routing = { routing: [{ name: 'Review', rule: { type: 'any' }, assignees: [{ role: 'reviewer' }] }] };
    const v = await underReview(p, u.selfish, routing);
    const res = await refused(() => approve(p, u.selfish, v.number, v.version, v.contentHash), { runs: [v.workflowId] });
    assertProblem(res, 403, 'forbidden');
    // Leaves no open task held by the reviewer role behind for other tests' inboxes.
    assert.equal((await decide(u.selfish, v.path, { decision: 'reject', comment: 'x' })).status, 403);
    const withdrawn = await p.api('POST', `${v.path}/withdraw`, { key: u.selfish.apiKey, body: { reason: 'test over' } });
    assert.equal(withdrawn.status, 200, JSON.stringify(withdrawn.body));
    await waitForRecord(p, u.selfish.apiKey, v.number, v.version, 'withdrawn');
  });

  it('records a signature with the signer, printed name, meaning and hash when everything is right', async () => {
    const v = await underReview(p, u.author, oneStage([u.rick]));
    const res = await decide(u.rick, v.path, {
      decision: 'approve',
      signature: { ...signature(u.rick, v.contentHash), meaning: 'review' },
    });
    assert.equal(res.status, 200, JSON.stringify(res.body));
    const view = await waitForRecord(p, u.author.apiKey, v.number, v.version, 'effective');
    assert.ok(view);
    const rows = await testEnv().db('signatures').where({ workflow_id: v.workflowId });
    assert.equal(rows.length, 1);
    assert.equal(rows[0].username, u.rick.username);
    assert.equal(rows[0].printed_name, 'Rick Tester');
    assert.equal(rows[0].meaning, 'review');
    assert.equal(rows[0].content_hash, v.contentHash);
    assert.ok(!JSON.stringify(rows[0]).includes(u.rick.password));
    assert.equal((await p.api('GET', `${versionPath(v.number, v.version)}/signatures`, { key: u.author.apiKey })).body.items.length, 1);
  });
});
