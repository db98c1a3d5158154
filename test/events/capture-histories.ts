/**
 * Drives a real webhook delivery run (a delivery after a retry, a dead letter, the admin disabling the
 * subscription) and saves its history as a replay fixture in test/fixtures/histories/webhooks/. Run with
 * `npx mocha test/events/capture-histories.ts` after a deliberate change to what a run records; commit the file.
 */
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { webhookDeliveryWorkflowId } from '../../common/webhook-delivery';
import { fetchFixture, saveFixture } from '../../workers/replay';
import { historiesDir } from '../helpers/replay-suite';
import { makeUsers } from '../helpers/users';
import { waitFor } from '../helpers/wait';
import { testEnv } from '../setup/env';
import { startReceiver } from './receiver';
import { startWebhookPlatform, verifyBackup } from './support';

const dir = historiesDir('webhooks');

describe('capturing a webhook delivery replay fixture from a real run', () => {
  it('captures a run that delivers in batches, retries, dead-letters and ends when an admin disables the subscription', async () => {
    mkdirSync(dir, { recursive: true });
    const s = await startWebhookPlatform({ retryFor: '2s' });
    const rx = await startReceiver();
    try {
      const { admin } = await makeUsers({ admin: ['admin'] });
      const created = await s.p.api('POST', '/api/v1/webhook-subscriptions', {
        key: admin.apiKey,
        body: { url: rx.url('/capture'), eventTypes: ['backup.verified'] },
      });
      assert.equal(created.status, 201);
      const id = created.body.id as string;
      let dead = '';
      rx.script(({ json, attempt }) => (json.data.backupId === dead ? 500 : attempt === 1 ? 503 : 200));
      await verifyBackup();
      const second = await verifyBackup();
      await waitFor(() => rx.at('/capture').some((r) => r.status === 200 && r.json.data.backupId === second), 'a delivery after a retry');
      dead = await verifyBackup();
      await waitFor(
        async () => (await testEnv().db('webhook_deliveries').where({ subscription_id: id, state: 'dead' })).length === 1,
        'a dead letter',
      );
      const off = await s.p.api('PATCH', `/api/v1/webhook-subscriptions/${id}`, { key: admin.apiKey, body: { enabled: false } });
      assert.equal(off.status, 200);
      const handle = testEnv().client.workflow.getHandle(webhookDeliveryWorkflowId(id));
      assert.equal(await handle.result(), 'disabled');
      // Runs since the batch path (WEBHOOK_BATCH_PATCH): batches until a failure, the failed event retried on its own.
      await saveFixture(join(dir, 'batches-retry-dead-letter-disabled.json'), await fetchFixture(testEnv().client, handle.workflowId));
    } finally {
      await s.stop();
      await rx.close();
    }
  });
});
