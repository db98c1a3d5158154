import assert from 'node:assert/strict';
import { verifyAuditChain } from '../../db/audit';
import { testEnv } from '../setup/env';
import { approve, addVersion, createDraft, getVersion, submit, versionPath, waitForRecord, waitForState } from '../helpers/documents';
import { startPlatform, type Platform } from '../helpers/platform';
import { makeUsers, type TestUser } from '../helpers/users';
import { waitFor } from '../helpers/wait';

describe('document approval, end to end through the API', () => {
  let p: Platform;
  let u: Record<'author' | 'rita' | 'rick' | 'april' | 'control', TestUser>;

  before(async () => {
    p = await startPlatform();
    u = await makeUsers({
      author: ['author'],
      rita: ['reviewer'],
      rick: ['reviewer'],
      april: ['approver'],
      control: ['document_control'],
    });
  });
  after(() => p.stop());

  // An SOP's routing template: technical review, QA approval, then document control last.
  const sopRouting = () => ({
    routing: [
      { name: 'Technical review', rule: { type: 'all' }, assignees: [{ user: u.rita.username }, { user: u.rick.username }] },
      { name: 'QA approval', rule: { type: 'any' }, assignees: [{ user: u.april.username }] },
      { name: 'Document control', assignees: [{ user: u.control.username }] },
    ],
  });
  const stageOpen = (number: string, version: number, stage: number) =>
    waitFor(
      async () => (await getVersion(p, u.author.apiKey, number, version)).process?.stages[stage].status === 'active',
      `v${version} stage ${stage + 1} open`,
    );

  it('takes an SOP through its three signed stages to effective, and the next version supersedes it', async () => {
    const mailsBefore = testEnv().mails.length;
    const { number, contentHash } = await createDraft(p, u.author, 'v1: calibrate monthly', 'Pipette calibration', 'sop');
    const started = await submit(p, u.author, number, 1, sopRouting());
    assert.equal(started.workflowId, `document-approval:${number}:v1`);

    const inReview = await waitFor(async () => {
      const v = await getVersion(p, u.author.apiKey, number, 1);
      return v.process?.stages[0].status === 'active' ? v : null;
    }, 'stage 1 open');
    assert.equal(inReview.state, 'in_review');
    assert.deepEqual(inReview.assignees.sort(), [`user:${u.rick.username}`, `user:${u.rita.username}`].sort());

    // Rita's inbox also shows tasks of the reviewer role from other documents; this document has one for her.
    const ritaTasks = (await p.api('GET', '/api/v1/tasks?mine=1&state=open', { key: u.rita.apiKey })).body.items.filter(
      (t: { entity_id: string }) => t.entity_id === number,
    );
    assert.equal(ritaTasks.length, 1);
    assert.match(ritaTasks[0].title, new RegExp(number));

    const first = await approve(p, u.rita, number, 1, contentHash);
    assert.equal(first.status, 200, JSON.stringify(first.body));
    assert.equal(
      first.body.stages[0].slots.find((s: { decision?: { username: string } }) => s.decision)?.decision.username,
      u.rita.username,
    );
    assert.equal((await approve(p, u.rick, number, 1, contentHash)).status, 200);

    await stageOpen(number, 1, 1);
    assert.equal((await approve(p, u.april, number, 1, contentHash)).status, 200);
    await stageOpen(number, 1, 2);
    assert.equal((await approve(p, u.control, number, 1, contentHash)).status, 200);
    const effective = await waitForState(p, u.author.apiKey, number, 1, 'effective');
    assert.ok(effective.nextReviewAt, 'a periodic review is scheduled');

    const signatures = effective.signatures;
    assert.equal(signatures.length, 4);
    for (const s of signatures) {
      assert.equal(s.content_hash, contentHash);
      assert.equal(s.meaning, 'approval');
      assert.equal(s.void, false);
      assert.ok(s.printed_name.endsWith('Tester'));
    }
    const left = (await p.api('GET', '/api/v1/tasks?mine=1&state=open', { key: u.rita.apiKey })).body.items;
    assert.equal(left.filter((t: { entity_id: string }) => t.entity_id === number).length, 0);

    // Version 2 goes through the same routing and supersedes version 1 in the same transaction.
    const v2 = await addVersion(p, u.author, number, 'v2: calibrate monthly and after repair');
    await submit(p, u.author, number, 2, sopRouting());
    await stageOpen(number, 2, 0);
    assert.equal((await approve(p, u.rita, number, 2, v2.contentHash)).status, 200);
    assert.equal((await approve(p, u.rick, number, 2, v2.contentHash)).status, 200);
    await stageOpen(number, 2, 1);
    assert.equal((await approve(p, u.april, number, 2, v2.contentHash)).status, 200);
    await stageOpen(number, 2, 2);
    assert.equal((await approve(p, u.control, number, 2, v2.contentHash)).status, 200);
    await waitForState(p, u.author.apiKey, number, 2, 'effective');
    await waitForRecord(p, u.author.apiKey, number, 1, 'superseded');

    // The superseded version's run ends once told.
    const v1Run = testEnv().client.workflow.getHandle(`document-approval:${number}:v1`);
    await waitFor(async () => (await v1Run.describe()).status.name === 'COMPLETED', 'v1 run completed');

    const listed = await p.api('GET', `/api/v1/documents?q=${number}`, { key: u.control.apiKey });
    assert.equal(listed.body.items[0].effective_version, 2);

    const trail = await p.api('GET', `/api/v1/documents/${number}/audit`, { key: u.control.apiKey });
    const actions = trail.body.items.map((e: { action: string }) => e.action);
    for (const action of [
      'document.created',
      'document.version_created',
      'document.stage_opened',
      'document.decision.approve',
      'document.effective',
      'document.superseded',
    ]) {
      assert.ok(actions.includes(action), `audit trail has ${action}`);
    }
    assert.equal((await verifyAuditChain(testEnv().db)).ok, true);

    // Review requests and effectiveness notices went out over SMTP, each once.
    await waitFor(() => testEnv().mails.length - mailsBefore >= 8, 'emails delivered');
    const ids = testEnv()
      .mails.slice(mailsBefore)
      .map((m) => m.messageId);
    assert.equal(new Set(ids).size, ids.length, 'no email was sent twice');
    const ritaMail = testEnv()
      .mails.slice(mailsBefore)
      .filter((m) => m.to.includes(`${u.rita.username}@lab.test`));
    assert.ok(ritaMail.some((m) => /Review requested/.test(m.subject ?? '')));

    const note = await p.api('GET', '/api/v1/notifications?unread=1', { key: u.author.apiKey });
    assert.ok(note.body.items.some((n: { kind: string }) => n.kind === 'document.effective'));
    const read = await p.api('POST', `/api/v1/notifications/${note.body.items[0].id}/read`, { key: u.author.apiKey });
    assert.equal(read.status, 204);
  });

  it('makes the run findable by document number through its search attributes', async () => {
    const { number } = await createDraft(p, u.author, undefined, 'Pipette calibration', 'sop');
    const { workflowId } = await submit(p, u.author, number, 1, sopRouting());
    const described = await waitFor(async () => {
      const res = await p.api('GET', `/api/v1/workflows/${workflowId}`, { key: u.control.apiKey });
      return res.body.searchAttributes?.DueAt ? res.body : null;
    }, 'search attributes upserted');
    assert.equal(described.searchAttributes.EntityType, 'document');
    assert.equal(described.searchAttributes.EntityId, number);
    assert.equal(described.stage, 'in_review');
    assert.ok(described.searchAttributes.DueAt);
    assert.deepEqual(described.pendingActions[0].action, 'decide');

    const found = await waitFor(async () => {
      const runs = [];
      for await (const run of testEnv().client.workflow.list({ query: `EntityId = '${number}' AND Stage = 'in_review'` }))
        runs.push(run.workflowId);
      return runs.length ? runs : null;
    }, 'visibility query by document number');
    assert.deepEqual(found, [workflowId]);
    const view = await p.api('GET', versionPath(number, 1), { key: u.control.apiKey });
    assert.equal(view.body.live, true, JSON.stringify(view.body));
  });
});
