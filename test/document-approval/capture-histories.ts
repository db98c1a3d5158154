/**
 * Drives real document-approval runs on the test server and saves their histories as replay fixtures in
 * test/fixtures/histories/document-approval/. Run with `npm run replay:capture` after a deliberate change to what a
 * run records; commit the new files.
 */
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { decideUpdate } from '../../common/document-approval';
import { testEnv } from '../setup/env';
import { approve, createDraft, addVersion, getVersion, submit, versionPath, waitForRecord, waitForState } from '../helpers/documents';
import { startPlatform, type Platform } from '../helpers/platform';
import { makeUsers, type TestUser } from '../helpers/users';
import { waitFor } from '../helpers/wait';
import { fetchFixture, saveFixture } from '../../workers/replay';
import { historiesDir } from '../helpers/replay-suite';

const dir = historiesDir('document-approval');

describe('capturing replay fixtures from real runs', () => {
  let p: Platform;
  let u: Record<'author' | 'rita' | 'rick' | 'april' | 'control', TestUser>;
  before(async () => {
    p = await startPlatform();
    u = await makeUsers({ author: ['author'], rita: ['reviewer'], rick: ['reviewer'], april: ['approver'], control: ['document_control'] });
  });
  after(() => p.stop());

  const active = (number: string, version: number, stage: number) =>
    waitFor(async () => (await getVersion(p, u.author.apiKey, number, version)).process?.stages[stage].status === 'active', 'stage active');
  const save = async (name: string, workflowId: string) =>
    saveFixture(join(dir, `${name}.json`), await fetchFixture(testEnv().client, workflowId));
  const routing = () => [
    { name: 'Technical review', assignees: [{ user: u.rita.username }, { user: u.rick.username }] },
    { name: 'QA approval', rule: { type: 'any' }, assignees: [{ role: 'approver' }] },
  ];

  it('captures two signed stages, effective, then superseded by the next version', async () => {
    // A specification's routing template: technical review, then QA approval.
    const { number, contentHash } = await createDraft(p, u.author, undefined, 'Pipette tip specification', 'specification');
    const { workflowId } = await submit(p, u.author, number, 1, { routing: routing() });
    await active(number, 1, 0);
    await approve(p, u.rita, number, 1, contentHash);
    await approve(p, u.rick, number, 1, contentHash);
    await active(number, 1, 1);
    await approve(p, u.april, number, 1, contentHash);
    await waitForState(p, u.author.apiKey, number, 1, 'effective');
    const v2 = await addVersion(p, u.author, number, 'second edition');
    const second = await submit(p, u.author, number, 2, { routing: routing() });
    await active(number, 2, 0);
    await approve(p, u.rita, number, 2, v2.contentHash);
    await approve(p, u.rick, number, 2, v2.contentHash);
    await active(number, 2, 1);
    await approve(p, u.april, number, 2, v2.contentHash);
    await waitForRecord(p, u.author.apiKey, number, 1, 'superseded');
    await waitFor(async () => (await testEnv().client.workflow.getHandle(workflowId).describe()).status.name === 'COMPLETED', 'v1 done');
    await save('superseded', workflowId);
    await save('effective', second.workflowId);
  });

  it('captures changes requested, a revision and a second round', async () => {
    const { number } = await createDraft(p, u.author, 'draft one');
    const { workflowId } = await submit(p, u.author, number, 1, { routing: [{ name: 'Review', assignees: [{ user: u.rick.username }] }] });
    await active(number, 1, 0);
    await p.api('POST', `${versionPath(number, 1)}/decisions`, {
      key: u.rick.apiKey,
      body: { decision: 'request_changes', comment: 'Add scope' },
    });
    await waitForState(p, u.author.apiKey, number, 1, 'changes_requested');
    const revised = await p.api('POST', `${versionPath(number, 1)}/revision`, { key: u.author.apiKey, body: { content: 'draft two' } });
    await active(number, 1, 0);
    await approve(p, u.rick, number, 1, revised.body.contentHash);
    await waitForState(p, u.author.apiKey, number, 1, 'effective');
    await save('revision-round', workflowId);
  });

  it('captures a reminder, an escalation, a reassignment, an extension and a rejection', async () => {
    const { number } = await createDraft(p, u.author);
    const { workflowId } = await submit(p, u.control, number, 1, {
      routing: [{ name: 'Review', assignees: [{ user: u.rita.username }], due: '3s' }],
      reminderBefore: '1s',
    });
    await waitFor(async () => (await getVersion(p, u.author.apiKey, number, 1)).process?.stages[0].escalated, 'escalated', 15_000);
    await p.api('POST', `${versionPath(number, 1)}/reassign`, {
      key: u.control.apiKey,
      body: { from: `user:${u.rita.username}`, to: { user: u.rick.username }, reason: 'Rita is away' },
    });
    await p.api('POST', `${versionPath(number, 1)}/extend`, {
      key: u.control.apiKey,
      body: { dueAt: new Date(Date.now() + 3_600_000).toISOString(), reason: 'New reviewer needs time' },
    });
    await p.api('POST', `${versionPath(number, 1)}/decisions`, {
      key: u.rick.apiKey,
      body: { decision: 'reject', comment: 'Out of scope' },
    });
    await waitForRecord(p, u.author.apiKey, number, 1, 'rejected');
    await save('escalated-rejected', workflowId);
  });

  it('captures an effective date, a periodic review and retirement', async () => {
    const { number, contentHash } = await createDraft(p, u.author);
    const { workflowId } = await submit(p, u.control, number, 1, {
      routing: [{ name: 'Review', assignees: [{ user: u.rita.username }] }],
      effectiveDate: new Date(Date.now() + 2000).toISOString(),
      periodicReview: '2s',
    });
    await active(number, 1, 0);
    await approve(p, u.rita, number, 1, contentHash);
    await waitFor(async () => (await getVersion(p, u.author.apiKey, number, 1)).process?.periodicReviewOpen, 'review open', 15_000);
    await p.api('POST', `${versionPath(number, 1)}/periodic-review`, { key: u.control.apiKey, body: { comment: 'Still valid' } });
    await p.api('POST', `${versionPath(number, 1)}/obsolete`, { key: u.control.apiKey, body: { reason: 'Retired' } });
    await waitForRecord(p, u.author.apiKey, number, 1, 'obsolete');
    await save('periodic-review-obsolete', workflowId);
  });

  it('captures a withdrawal while changes were requested', async () => {
    const { number } = await createDraft(p, u.author);
    const { workflowId } = await submit(p, u.author, number, 1, { routing: [{ name: 'Review', assignees: [{ user: u.rita.username }] }] });
    await active(number, 1, 0);
    await p.api('POST', `${versionPath(number, 1)}/decisions`, {
      key: u.rita.apiKey,
      body: { decision: 'request_changes', comment: 'Unclear' },
    });
    await waitForState(p, u.author.apiKey, number, 1, 'changes_requested');
    await p.api('POST', `${versionPath(number, 1)}/withdraw`, { key: u.author.apiKey, body: { reason: 'Will be merged into SOP-9' } });
    await waitForRecord(p, u.author.apiKey, number, 1, 'withdrawn');
    await save('withdrawn', workflowId);
  });

  it('captures a forged signature refused by its recording step, its slot given back, then the real one', async () => {
    const { number, contentHash } = await createDraft(p, u.author, 'forged then signed');
    const { workflowId } = await submit(p, u.author, number, 1, { routing: [{ name: 'Review', assignees: [{ user: u.rick.username }] }] });
    await active(number, 1, 0);
    const forged = testEnv()
      .client.workflow.getHandle(workflowId)
      .executeUpdate(decideUpdate, {
        args: [
          {
            actor: u.rick.actor,
            grant: randomBytes(32).toString('base64url'),
            decision: 'approve',
            signature: { meaning: 'approval', contentHash, signedAt: new Date().toISOString() },
          },
        ],
      });
    await forged.then(
      () => Promise.reject(new Error('a forged signature was accepted')),
      () => undefined,
    );
    await approve(p, u.rick, number, 1, contentHash);
    await waitForState(p, u.author.apiKey, number, 1, 'effective');
    await save('granted-forgery-refused', workflowId);
  });
});
