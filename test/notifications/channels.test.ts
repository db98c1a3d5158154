import assert from 'node:assert/strict';
import { decodePayloadsIn } from '../../workers/replay';
import type { Platform } from '../helpers/platform';
import { SLACK, startSlackWebhookServer } from '../helpers/slack-webhook-server';
import { startTwilioServer, TWILIO } from '../helpers/twilio-server';
import { makeUsers, type TestUser } from '../helpers/users';
import { waitFor } from '../helpers/wait';
import { payloadTexts } from '../replay/expectations';
import { testEnv } from '../setup/env';
import { addressesFor, deliveries, notify, runResult, startNoticePlatform, type SlackServer, type TwilioServer } from './support';

describe('notifications on Slack and SMS, at the wire', function () {
  this.timeout(300_000);
  let slack: SlackServer;
  let twilio: TwilioServer;
  let p: Platform;
  let people: Record<'ann' | 'bob' | 'cat' | 'dan', TestUser>;
  const at: Record<string, ReturnType<typeof addressesFor>> = {};
  const workflowIds: string[] = [];
  const secrets: string[] = [];

  async function setUp(name: keyof typeof people, channels: string[]) {
    at[name] = addressesFor(slack);
    secrets.push(at[name].url, at[name].phone);
    const res = await p.api('PUT', '/api/v1/me/notification-preferences', {
      key: people[name].apiKey,
      body: { channels, slackWebhookUrl: at[name].url, phoneNumber: at[name].phone },
    });
    assert.equal(res.status, 200, JSON.stringify(res.body));
  }

  before(async () => {
    slack = await startSlackWebhookServer();
    twilio = await startTwilioServer();
    p = await startNoticePlatform(slack, twilio, { ackTimeout: '1h' });
    people = await makeUsers({ ann: ['reviewer'], bob: ['reviewer'], cat: ['reviewer'], dan: ['reviewer'] });
  });
  after(async () => {
    await p?.stop();
    await slack?.stop();
    await twilio?.stop();
  });

  it('follows each person’s channels for a normal notice, and keeps a digestible one for the digest', async () => {
    await setUp('ann', ['slack']);
    await setUp('bob', ['sms', 'email']);
    const n = await notify(p, 'normal', [people.ann, people.bob]);
    workflowIds.push(n.workflowId);
    secrets.push(n.title);
    assert.equal((await runResult(n.workflowId)).done, true);

    assert.ok(slack.posts.some((m) => m.path === at.ann.path && m.text.includes('overdue task escalated')));
    assert.equal(slack.attempts(at.bob.path), 0, 'bob did not choose Slack');
    assert.ok(twilio.sent.some((m) => m.to === at.bob.phone && m.from === '+15005550006'));
    assert.equal(twilio.attempts(at.ann.phone), 0, 'ann did not choose SMS');
    const inApp = await testEnv().db('notifications').where({ kind: 'task.escalated' }).whereIn('user_id', [people.ann.actor.userId, people.bob.actor.userId]);
    assert.deepEqual(inApp, [], 'neither chose in-app');
    await waitFor(() => testEnv().mails.find((m) => m.to.includes(`${people.bob.username}@lab.test`)), 'bob’s email');
    const rows = await deliveries(n.noticeId);
    assert.deepEqual(
      rows.map((r) => `${r.user_id === people.ann.actor.userId ? 'ann' : 'bob'}:${r.channel}:${r.state}`).sort(),
      ['ann:slack:sent', 'bob:email:sent', 'bob:sms:sent'],
    );

    const later = await notify(p, 'digest', [people.ann]);
    assert.equal(later.needsRun, false, 'a digestible notice waits for the digest; no run');
    assert.deepEqual(
      (await deliveries(later.noticeId)).map((r) => `${r.channel}:${r.state}`),
      ['digest:pending'],
    );
  });

  it('retries Slack and Twilio on 429 and 500, never a permanent refusal, and one failing channel holds up no other', async () => {
    await setUp('cat', ['slack', 'sms']);
    await setUp('dan', ['slack', 'sms', 'in_app']);
    slack.script(at.cat.path, [SLACK.rateLimited(1), SLACK.serverError, SLACK.ok]);
    twilio.script(at.cat.phone, [TWILIO.serverError, TWILIO.tooManyRequests(1)]);
    slack.script(at.dan.path, [SLACK.invalidToken]);
    twilio.script(at.dan.phone, [TWILIO.invalidNumber]);
    const n = await notify(p, 'normal', [people.cat, people.dan]);
    workflowIds.push(n.workflowId);
    secrets.push(n.title);
    assert.equal((await runResult(n.workflowId)).done, true);

    const rows = await deliveries(n.noticeId);
    const of = (u: TestUser, channel: string) => rows.find((r) => r.user_id === u.actor.userId && r.channel === channel);
    assert.deepEqual({ state: of(people.cat, 'slack')?.state, attempts: of(people.cat, 'slack')?.attempts }, { state: 'sent', attempts: 3 });
    assert.deepEqual({ state: of(people.cat, 'sms')?.state, attempts: of(people.cat, 'sms')?.attempts }, { state: 'sent', attempts: 3 });
    assert.equal(slack.attempts(at.cat.path), 3);
    assert.equal(twilio.attempts(at.cat.phone), 3);
    assert.ok(twilio.sent.some((m) => m.to === at.cat.phone));

    assert.equal(of(people.dan, 'slack')?.state, 'failed');
    assert.match(of(people.dan, 'slack')?.error ?? '', /403 invalid_token/);
    assert.equal(of(people.dan, 'sms')?.state, 'failed');
    assert.match(of(people.dan, 'sms')?.error ?? '', /error 21211/);
    assert.equal(slack.attempts(at.dan.path), 1, 'invalid_token is not retried');
    assert.equal(twilio.attempts(at.dan.phone), 1, '21211 is not retried');
    assert.equal(of(people.dan, 'in_app')?.state, 'sent', 'the in-app notice stands whatever Slack and Twilio said');
  });

  it('records a 404 no_service from Slack as failed without retrying', async () => {
    const where = addressesFor(slack);
    secrets.push(where.url, where.phone);
    const res = await p.api('PUT', '/api/v1/me/notification-preferences', {
      key: people.ann.apiKey,
      body: { channels: ['slack'], slackWebhookUrl: where.url },
    });
    assert.equal(res.status, 200);
    slack.script(where.path, [SLACK.noService]);
    const n = await notify(p, 'normal', [people.ann]);
    workflowIds.push(n.workflowId);
    await runResult(n.workflowId);
    assert.deepEqual(
      (await deliveries(n.noticeId)).map((r) => [r.channel, r.state, r.attempts]),
      [['slack', 'failed', 1]],
    );
    assert.equal(slack.attempts(where.path), 1);
  });

  it('lets a person set their own channels, an admin read them, and refuses what cannot reach anyone', async () => {
    const [admin] = Object.values(await makeUsers({ admin: ['admin'] }));
    const mine = await p.api('GET', '/api/v1/me/notification-preferences', { key: people.dan.apiKey });
    assert.equal(mine.status, 200);
    assert.equal(mine.body.slackWebhookSet, true);
    assert.ok(!JSON.stringify(mine.body).includes(at.dan.url), 'the webhook URL is a credential: never shown again');
    const byAdmin = await p.api('GET', `/api/v1/users/${people.dan.actor.userId}/notification-preferences`, { key: admin.apiKey });
    assert.equal(byAdmin.status, 200);
    assert.deepEqual(byAdmin.body.channels, ['slack', 'sms', 'in_app']);
    const byPeer = await p.api('GET', `/api/v1/users/${people.dan.actor.userId}/notification-preferences`, { key: people.ann.apiKey });
    assert.equal(byPeer.status, 403);
    const unknown = await p.api('GET', '/api/v1/users/00000000-0000-4000-8000-000000000000/notification-preferences', { key: admin.apiKey });
    assert.equal(unknown.status, 404);

    const put = (body: unknown, raw?: string) =>
      p.api('PUT', '/api/v1/me/notification-preferences', { key: admin.apiKey, ...(raw !== undefined ? { raw } : { body }) });
    const cases: [unknown, number, string][] = [
      [{ phoneNumber: '0791234567' }, 400, 'body.phoneNumber'],
      [{ channels: ['fax'] }, 400, 'body.channels.0'],
      [{ channels: ['sms', 'sms'] }, 400, 'body.channels'],
      [{}, 400, 'body'],
      [{ slackWebhookUrl: 'https://evil.example/services/T/B/x' }, 422, 'body.slackWebhookUrl'],
      [{ channels: ['sms'] }, 422, 'body.channels'],
      [{ channels: ['slack'] }, 422, 'body.channels'],
    ];
    for (const [body, status, field] of cases) {
      const res = await put(body);
      assert.equal(res.status, status, `${JSON.stringify(body)}: ${JSON.stringify(res.body)}`);
      assert.match(res.headers.get('content-type') ?? '', /problem\+json/);
      assert.ok(JSON.stringify(res.body.errors ?? []).includes(field), `${JSON.stringify(body)} names ${field}: ${JSON.stringify(res.body)}`);
    }
    assert.equal((await put(undefined, '{"channels":')).status, 400);
    const still = await p.api('GET', '/api/v1/me/notification-preferences', { key: admin.apiKey });
    assert.deepEqual(still.body.channels, ['email', 'in_app'], 'nothing refused was saved');
  });

  it('keeps the notice’s words, phone numbers and webhook URLs out of every run’s history', async () => {
    assert.ok(workflowIds.length >= 3 && secrets.length >= 8);
    const codecs = testEnv().dataConverter.payloadCodecs ?? [];
    for (const id of workflowIds) {
      const history = await testEnv().client.workflow.getHandle(id).fetchHistory();
      await decodePayloadsIn(history, codecs);
      const texts = payloadTexts(history).join('\n');
      assert.ok(texts.includes(id.replace('notice:', '')), 'the decoded history holds the notice ID');
      for (const secret of secrets) assert.ok(!texts.includes(secret), `${id} must not hold ${secret}`);
    }
  });
});
