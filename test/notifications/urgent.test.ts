import assert from 'node:assert/strict';
import type { Platform } from '../helpers/platform';
import { startSlackWebhookServer } from '../helpers/slack-webhook-server';
import { startTwilioServer } from '../helpers/twilio-server';
import { makeUsers, type TestUser } from '../helpers/users';
import { waitFor } from '../helpers/wait';
import { testEnv } from '../setup/env';
import { addressesFor, notify, runResult, startNoticePlatform, type SlackServer, type TwilioServer } from './support';

describe('urgent notices: SMS and Slack at once, escalation until acknowledged', function () {
  this.timeout(300_000);
  let slack: SlackServer;
  let twilio: TwilioServer;
  let people: Record<'first' | 'second' | 'third' | 'outsider', TestUser>;
  const at: Record<string, ReturnType<typeof addressesFor>> = {};
  const platforms: Platform[] = [];

  const reached = (name: keyof typeof people) =>
    slack.posts.some((m) => m.path === at[name].path && m.text.includes('URGENT')) && twilio.sent.some((m) => m.to === at[name].phone);

  before(async () => {
    slack = await startSlackWebhookServer();
    twilio = await startTwilioServer();
    people = await makeUsers({ first: ['reviewer'], second: ['reviewer'], third: ['reviewer'], outsider: ['reviewer'] });
    const setUp = await startNoticePlatform(slack, twilio, {});
    platforms.push(setUp);
    for (const name of Object.keys(people) as (keyof typeof people)[]) {
      at[name] = addressesFor(slack);
      // Email only for normal notices: an urgent one takes SMS and Slack whatever a person chose.
      const res = await setUp.api('PUT', '/api/v1/me/notification-preferences', {
        key: people[name].apiKey,
        body: { channels: ['email'], slackWebhookUrl: at[name].url, phoneNumber: at[name].phone },
      });
      assert.equal(res.status, 200, JSON.stringify(res.body));
    }
  });
  after(async () => {
    for (const p of platforms) await p.stop();
    await slack?.stop();
    await twilio?.stop();
  });

  it('reaches the first person on SMS and Slack at once and stops when they acknowledge', async () => {
    const p = await startNoticePlatform(slack, twilio, { ackTimeout: '1h', chain: [{ username: people.second.username }] });
    platforms.push(p);
    const n = await notify(p, 'urgent', [people.first]);
    await waitFor(() => reached('first'), 'SMS and Slack to the first person', 60_000);

    const stranger = await p.api('POST', `/api/v1/notices/${n.noticeId}/acknowledge`, { key: people.outsider.apiKey });
    assert.equal(stranger.status, 404, 'only someone the notice reached may acknowledge it');
    const ack = await p.api('POST', `/api/v1/notices/${n.noticeId}/acknowledge`, { key: people.first.apiKey });
    assert.equal(ack.status, 200, JSON.stringify(ack.body));
    assert.deepEqual(ack.body, { noticeId: n.noticeId, acknowledged: true, step: 0 });

    const result = await runResult(n.workflowId);
    assert.deepEqual({ acknowledged: result.acknowledged, step: result.step, done: result.done }, { acknowledged: true, step: 0, done: true });
    const told = await testEnv().db('notice_recipients').where({ notice_id: n.noticeId }).pluck('user_id');
    assert.deepEqual(told, [people.first.actor.userId], 'nobody further up the chain was told');
    assert.equal(slack.attempts(at.second.path), 0);
    const notice = await testEnv().db('notices').where({ id: n.noticeId }).first();
    assert.equal(notice.state, 'acknowledged');
    assert.equal(notice.acknowledged_by, people.first.actor.userId);
    const audit = await testEnv().db('audit_events').where({ action: 'notice.acknowledged', actor_id: people.first.actor.userId }).first();
    assert.ok(audit, 'the acknowledgement is in the audit trail');
    const again = await p.api('POST', `/api/v1/notices/${n.noticeId}/acknowledge`, { key: people.first.apiKey });
    assert.equal(again.status, 409);
  });

  it('escalates to the next person of the chain when nobody acknowledges in time, until one of them does', async () => {
    const p = await startNoticePlatform(slack, twilio, {
      ackTimeout: '5s',
      chain: [{ username: people.second.username }, { username: people.third.username }, { username: people.outsider.username }],
    });
    platforms.push(p);
    const n = await notify(p, 'urgent', [people.first]);
    await waitFor(() => reached('first'), 'SMS and Slack to the first person', 60_000);
    await waitFor(() => reached('second'), 'SMS and Slack to the next person of the chain', 60_000);
    const view = await p.api('GET', `/api/v1/notices/${n.noticeId}`, { key: people.second.apiKey });
    assert.equal(view.status, 200);
    assert.ok(view.body.step >= 1);

    const ack = await p.api('POST', `/api/v1/notices/${n.noticeId}/acknowledge`, { key: people.second.apiKey });
    assert.equal(ack.status, 200, JSON.stringify(ack.body));
    const result = await runResult(n.workflowId);
    assert.equal(result.acknowledged, true);
    const notice = await testEnv().db('notices').where({ id: n.noticeId }).first();
    assert.equal(notice.acknowledged_by, people.second.actor.userId);
    const escalations = await testEnv().db('audit_events').where({ action: 'notice.escalated' }).whereRaw(`details->>'noticeId' = ?`, [n.noticeId]);
    assert.ok(escalations.length >= 1);
  });

  it('ends unanswered when the chain runs out', async () => {
    const p = await startNoticePlatform(slack, twilio, { ackTimeout: '1s', chain: [{ username: people.third.username }] });
    platforms.push(p);
    const n = await notify(p, 'urgent', [people.outsider]);
    const result = await runResult(n.workflowId);
    assert.deepEqual({ acknowledged: result.acknowledged, step: result.step }, { acknowledged: false, step: 1 });
    assert.equal((await testEnv().db('notices').where({ id: n.noticeId }).first()).state, 'unanswered');
    assert.ok(reached('third'), 'the last of the chain was reached before it ended');
  });
});
