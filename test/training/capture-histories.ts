/**
 * Drives real training runs on the test server and saves their histories as replay fixtures in
 * test/fixtures/histories/training/ (and a document-approval run that starts a campaign). Run with
 * `npm run replay:capture` after a deliberate change to what a run records; commit the new files.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { signOffUpdate, trainingIds } from '../../common/training';
import { approve, createDraft, submit, waitForRecord } from '../helpers/documents';
import { issueTestGrant } from '../helpers/forgery';
import { startPlatform, type Platform } from '../helpers/platform';
import { historiesDir } from '../helpers/replay-suite';
import { makeUsers, type TestUser } from '../helpers/users';
import { waitFor } from '../helpers/wait';
import { testEnv } from '../setup/env';
import { fetchFixture, saveFixture } from '../../workers/replay';
import { userSlot } from '../api/support';
import { grantedTrainingSignOff } from './support';

describe('capturing training replay fixtures from real runs', () => {
  let p: Platform;
  let u: Record<'control' | 'rita' | 'signer' | 'late' | 'leaver' | 'admin', TestUser>;
  before(async () => {
    p = await startPlatform();
    // A role no other capture uses, so each campaign assigns exactly these three.
    u = await makeUsers({
      control: ['document_control'],
      rita: ['approver'],
      signer: ['clinician'],
      late: ['clinician'],
      leaver: ['clinician'],
      admin: ['admin'],
    });
  });
  after(() => p.stop());

  const db = () => testEnv().db;
  const done = (workflowId: string) =>
    waitFor(
      async () => ((await testEnv().client.workflow.getHandle(workflowId).describe().catch(() => null))?.status.name === 'COMPLETED' ? true : null),
      `${workflowId} done`,
      60_000,
    );
  const state = (who: TestUser, number: string, version: number, expected: string) =>
    waitFor(
      async () => ((await db()('training_assignments').where({ workflow_id: trainingIds.assignment(who.username, number, version) }).first())?.state === expected ? true : null),
      `${who.username} ${expected}`,
      60_000,
    );

  async function effective(number: string | undefined, body: Record<string, unknown>) {
    let draft: { number: string; version: number; contentHash: string };
    if (number) {
      const res = await p.api('POST', `/api/v1/documents/${number}/versions`, { key: u.control.apiKey, body: { content: `Revised ${Math.random()}` } });
      draft = { number, version: res.body.version, contentHash: res.body.contentHash };
    } else {
      draft = await createDraft(p, u.control, `Consent procedure ${Math.random()}`, 'Consent procedure', 'form');
    }
    await submit(p, u.control, draft.number, draft.version, { routing: [{ name: 'Review', rule: { type: 'all' }, assignees: [userSlot(u.rita)] }], ...body });
    await waitFor(async () => (await approve(p, u.rita, draft.number, draft.version, draft.contentHash)).status === 200, 'approved');
    await waitForRecord(p, u.control.apiKey, draft.number, draft.version, 'effective');
    return draft;
  }

  it('captures a campaign, a signed assignment, a forged sign-off refused, a cancelled and a superseded one', async () => {
    const dir = historiesDir('training');
    const save = async (name: string, workflowId: string) => saveFixture(join(dir, `${name}.json`), await fetchFixture(testEnv().client, workflowId));
    const v1 = await effective(undefined, { training: { roles: ['clinician'], due: '1h', reminderBefore: '10m' } });
    await done(trainingIds.campaign(v1.number, 1));
    const signerRun = trainingIds.assignment(u.signer.username, v1.number, 1);
    await state(u.signer, v1.number, 1, 'assigned');
    const signature = { meaning: 'read_and_understood', contentHash: v1.contentHash, signedAt: new Date().toISOString() };
    const foreign = await issueTestGrant(u.late, signerRun, 'training.sign_off', grantedTrainingSignOff(signature), signature);
    await assert.rejects(testEnv().client.workflow.getHandle(signerRun).executeUpdate(signOffUpdate, { args: [{ actor: u.signer.actor, grant: foreign, signature }] }));
    const signed = await p.api('POST', `/api/v1/training/assignments/${u.signer.username}/${v1.number}/1/sign-off`, {
      key: u.signer.apiKey,
      body: { signature: { password: u.signer.password, meaning: 'read_and_understood', contentHash: v1.contentHash } },
    });
    assert.equal(signed.status, 200, JSON.stringify(signed.body));
    await done(signerRun);
    await state(u.leaver, v1.number, 1, 'assigned');
    const res = await p.api('PUT', `/api/v1/users/${u.leaver.username}/roles`, {
      key: u.admin.apiKey,
      body: { roles: ['author'], reason: 'left the clinic', password: u.admin.password },
    });
    assert.equal(res.status, 200, JSON.stringify(res.body));
    await state(u.leaver, v1.number, 1, 'cancelled');
    await done(trainingIds.assignment(u.leaver.username, v1.number, 1));
    await state(u.late, v1.number, 1, 'assigned');
    await effective(v1.number, { trainingImpact: 'retrain' });
    await state(u.late, v1.number, 1, 'superseded');
    await done(trainingIds.assignment(u.late.username, v1.number, 1));
    await done(trainingIds.campaign(v1.number, 2));
    await save('campaign', trainingIds.campaign(v1.number, 1));
    await save('campaign-revision', trainingIds.campaign(v1.number, 2));
    await save('signed-after-forgery-refused', signerRun);
    await save('cancelled-role-removed', trainingIds.assignment(u.leaver.username, v1.number, 1));
    await save('superseded', trainingIds.assignment(u.late.username, v1.number, 1));
    await save('open', trainingIds.assignment(u.signer.username, v1.number, 2));
    await saveFixture(
      join(historiesDir('document-approval'), 'effective-training-campaign.json'),
      await fetchFixture(testEnv().client, `document-approval:${v1.number}:v2`),
    );
  });
});
