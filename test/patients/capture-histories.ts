/**
 * Drives a real break-glass addition through the API and saves the history of the email delivery it starts as a
 * replay fixture in test/fixtures/histories/notifications/. Run with `npx mocha test/patients/capture-histories.ts`
 * after a deliberate change to deliverEmailsWorkflow; commit the new file. The history carries outbox IDs only.
 */
import assert from 'node:assert/strict';
import { mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { encryptionKeyIdsIn, fetchFixture, loadFixture, saveFixture } from '../../workers/replay';
import { startPlatform, type Platform } from '../helpers/platform';
import { historiesDir } from '../helpers/replay-suite';
import { makeUsers } from '../helpers/users';
import { waitFor } from '../helpers/wait';
import { testEnv } from '../setup/env';
import { createPatient, marker, patientUrl } from './support';

const dir = historiesDir('notifications');

describe('capturing the notifications replay fixture from a real run', () => {
  let p: Platform;
  before(async () => {
    mkdirSync(dir, { recursive: true });
    p = await startPlatform();
  });
  after(() => p.stop());

  it('captures the delivery of the privacy officers’ break-glass alert', async () => {
    const u = await makeUsers({ carla: ['clinician'], cleo: ['clinician'], admin: ['admin'], pria: ['privacy_officer'] });
    const family = marker();
    const patient = await createPatient(p, u.carla, { familyName: family });
    const reason = 'The care team is away and the patient needs urgent follow-up';
    const res = await p.api('POST', `${patientUrl(patient.id)}/clinicians`, {
      key: u.admin.apiKey,
      body: { username: u.cleo.username, breakGlass: { reason } },
    });
    assert.equal(res.status, 201, JSON.stringify(res.body));
    const workflowId = `deliver-emails:break-glass:${res.body.breakGlass.id}`;
    await waitFor(
      async () => (await testEnv().client.workflow.getHandle(workflowId).describe()).status.name === 'COMPLETED',
      'the delivery to complete',
    );
    const file = join(dir, 'break-glass-alert.json');
    await saveFixture(file, await fetchFixture(testEnv().client, workflowId));
    const saved = await loadFixture(file);
    assert.deepEqual(encryptionKeyIdsIn(saved.history), [], 'every payload is stored decoded');
    const text = readFileSync(file, 'utf8');
    for (const term of [family, reason]) assert.ok(!text.includes(term), `the fixture carries "${term}"`);
  });
});
