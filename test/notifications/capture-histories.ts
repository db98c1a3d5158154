/**
 * Drives real notice runs and saves their histories as replay fixtures in test/fixtures/histories/notices/: an
 * urgent notice that retries Slack, escalates one step and is acknowledged there; a normal notice whose SMS is
 * refused for good. Run with `npx mocha test/notifications/capture-histories.ts` after a deliberate change to what
 * a run records; commit the files.
 */
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { fetchFixture, saveFixture } from '../../workers/replay';
import { historiesDir } from '../helpers/replay-suite';
import { SLACK, startSlackWebhookServer } from '../helpers/slack-webhook-server';
import { startTwilioServer, TWILIO } from '../helpers/twilio-server';
import { makeUsers } from '../helpers/users';
import { waitFor } from '../helpers/wait';
import { testEnv } from '../setup/env';
import { addressesFor, notify, runResult, startNoticePlatform } from './support';

const dir = historiesDir('notices');

describe('capturing notice replay fixtures from real runs', function () {
  this.timeout(300_000);
  it('captures an urgent notice escalated and acknowledged, and a normal one with a refused SMS', async () => {
    mkdirSync(dir, { recursive: true });
    const slack = await startSlackWebhookServer();
    const twilio = await startTwilioServer();
    const { first, second } = await makeUsers({ first: ['reviewer'], second: ['reviewer'] });
    const p = await startNoticePlatform(slack, twilio, { ackTimeout: '3s', chain: [{ username: second.username }] });
    try {
      const at = { first: addressesFor(slack), second: addressesFor(slack) };
      for (const [user, where] of [[first, at.first], [second, at.second]] as const) {
        const res = await p.api('PUT', '/api/v1/me/notification-preferences', {
          key: user.apiKey,
          body: { channels: ['slack', 'sms'], slackWebhookUrl: where.url, phoneNumber: where.phone },
        });
        assert.equal(res.status, 200);
      }
      slack.script(at.first.path, [SLACK.serverError]);
      const urgent = await notify(p, 'urgent', [first]);
      await waitFor(() => twilio.sent.some((m) => m.to === at.second.phone), 'the escalation to the second person', 60_000);
      const ack = await p.api('POST', `/api/v1/notices/${urgent.noticeId}/acknowledge`, { key: second.apiKey });
      assert.equal(ack.status, 200);
      assert.equal((await runResult(urgent.workflowId)).acknowledged, true);
      await saveFixture(join(dir, 'urgent-escalated-acknowledged.json'), await fetchFixture(testEnv().client, urgent.workflowId));

      twilio.script(at.first.phone, [TWILIO.invalidNumber]);
      const normal = await notify(p, 'normal', [first]);
      assert.equal((await runResult(normal.workflowId)).done, true);
      await saveFixture(join(dir, 'normal-sms-refused.json'), await fetchFixture(testEnv().client, normal.workflowId));
    } finally {
      await p.stop();
      await slack.stop();
      await twilio.stop();
    }
  });
});
