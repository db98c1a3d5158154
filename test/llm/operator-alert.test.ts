import assert from 'node:assert/strict';
import { alertOperators } from '../../activities/llm/operator-alert';
import { testEnv } from '../setup/env';
import { makeUsers, type TestUser } from '../helpers/users';

describe('alerting operators about an LLM provider', () => {
  let users: Record<'ops' | 'admin' | 'clinician', TestUser>;
  // A far-off hour of its own, so other tests' alerts never share its idempotency keys.
  const now = new Date('2031-03-04T05:06:07Z');

  before(async () => {
    users = await makeUsers({ ops: ['it_operator'], admin: ['admin'], clinician: ['clinician'] });
  });

  const notificationsOf = (user: TestUser) =>
    testEnv().db('notifications').where({ user_id: user.actor.userId, kind: 'llm.provider_alert' }).select('title', 'body');

  it('notifies IT operators and admins in the app and by email, and audits it', async () => {
    const outboxIds = await alertOperators(testEnv().db, 'lab.test', { provider: 'openai', kind: 'quota_exhausted', now });
    assert.ok(outboxIds.length >= 2);
    assert.equal((await notificationsOf(users.ops)).length, 1);
    assert.equal((await notificationsOf(users.admin)).length, 1);
    assert.equal((await notificationsOf(users.clinician)).length, 0);
    const mails = await testEnv().db('email_outbox').whereIn('id', outboxIds).select('to_address', 'subject');
    assert.ok(mails.some((m) => m.to_address.includes(`${users.ops.username}@lab.test`)));
    assert.match(mails[0].subject, /openai: quota exhausted/);
    const audit = await testEnv()
      .db('audit_events')
      .where({ action: 'llm.provider_alert', entity_id: 'openai' })
      .orderBy('seq', 'desc')
      .first();
    assert.equal(audit.details.kind, 'quota_exhausted');
  });

  it('alerts once an hour per provider and kind, however many failures', async () => {
    const later = new Date(now.getTime() + 20 * 60_000);
    for (let i = 0; i < 5; i += 1)
      await alertOperators(testEnv().db, 'lab.test', { provider: 'openai', kind: 'quota_exhausted', now: later });
    assert.equal((await notificationsOf(users.ops)).length, 1);
    await alertOperators(testEnv().db, 'lab.test', { provider: 'openai', kind: 'auth', now: later });
    assert.equal((await notificationsOf(users.ops)).length, 2);
    await alertOperators(testEnv().db, 'lab.test', {
      provider: 'openai',
      kind: 'quota_exhausted',
      now: new Date(now.getTime() + 3_600_000),
    });
    assert.equal((await notificationsOf(users.ops)).length, 3);
  });

  it('names no patient, note or job, only the provider and the failure', async () => {
    for (const n of await notificationsOf(users.ops)) {
      assert.doesNotMatch(`${n.title} ${n.body}`, /patient [0-9a-f-]{36}|soap-summary:|note/i);
    }
  });
});
