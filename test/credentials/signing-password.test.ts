import assert from 'node:assert/strict';
import { dictionary } from '@zxcvbn-ts/language-common';
import { verifySigner } from '../../api/signing';
import { Problem } from '../../api/problem';
import { createLogger } from '../../platform/logger';
import { assertProblem } from '../api/support';
import { startPlatform, testApiConfig, type Platform } from '../helpers/platform';
import { makeUsers, type TestUser } from '../helpers/users';
import { waitFor } from '../helpers/wait';
import { testEnv } from '../setup/env';
import { freshPassword } from './support';

const MAX_AGE_MS = 90 * 86_400_000;

describe('signing passwords: change, policy, aging and lockout', function () {
  this.timeout(120_000);
  let p: Platform;
  let u: Record<'tech' | 'it' | 'qa' | 'other', TestUser>;
  const signing = { maxFailures: 3, failureWindowMs: 60_000, lockMs: 60_000, maxAgeMs: MAX_AGE_MS };

  before(async () => {
    p = await startPlatform({ apiConfig: { signing } });
    u = await makeUsers({ tech: ['lab_technician'], it: ['it_operator'], qa: ['qa_manager'], other: ['author'] });
  });
  after(async () => p?.stop());

  const change = (user: TestUser, currentPassword: string, newPassword: string) =>
    p.api('POST', '/api/v1/me/signing-password', { key: user.apiKey, body: { currentPassword, newPassword } });
  const signerDeps = () => ({
    db: testEnv().appDb,
    temporal: testEnv().client,
    config: testApiConfig(p.taskQueue, { signing }),
    log: createLogger({ LOG_LEVEL: 'silent', LOG_PRETTY: false }, 'test'),
  });
  const sign = (user: TestUser, password: string) =>
    verifySigner(
      signerDeps(),
      user.actor,
      { password, meaning: 'approval', contentHash: 'a'.repeat(64) },
      { entityType: 'test', entityId: 'T-1' },
    );
  const refusal = async (promise: Promise<unknown>): Promise<Problem> => {
    try {
      await promise;
    } catch (err) {
      if (err instanceof Problem) return err;
      throw err;
    }
    throw new Error('expected a refusal');
  };

  describe('each rule of the policy answers 422 naming it, and leaves the password as it was', () => {
    const common = dictionary['passwords-common'].find((pw) => pw.length >= 12)!;
    const cases: [string, (user: TestUser) => string][] = [
      ['password-too-short', () => 'Sh0rt!pw'],
      ['password-too-long', () => 'x'.repeat(201)],
      ['password-common', () => common.toUpperCase()],
      ['password-contains-username', (user) => `My-${user.username}-pw!`],
      ['password-reused', (user) => user.password],
    ];
    for (const [rule, password] of cases) {
      it(rule, async () => {
        const before = await testEnv().db('users').where({ id: u.other.actor.userId }).first('password_hash', 'password_changed_at');
        const res = await change(u.other, u.other.password, password(u.other));
        assertProblem(res, 422, rule);
        assert.equal(res.body.rule, rule);
        assert.deepEqual(
          await testEnv().db('users').where({ id: u.other.actor.userId }).first('password_hash', 'password_changed_at'),
          before,
        );
      });
    }

    it('refuses any of the last passwords, not only the current one', async () => {
      const [a, b] = [freshPassword('a'), freshPassword('b')];
      const { tech } = await makeUsers({ tech: ['lab_technician'] });
      assert.equal((await change(tech, tech.password, a)).status, 204);
      assert.equal((await change(tech, a, b)).status, 204);
      assertProblem(await change(tech, b, tech.password), 422, 'password-reused');
      assertProblem(await change(tech, b, a), 422, 'password-reused');
    });
  });

  it('changes the password with the current one: the old stops signing, the new signs', async () => {
    const next = freshPassword('next');
    assert.equal((await change(u.tech, u.tech.password, next)).status, 204);
    const old = await refusal(sign(u.tech, u.tech.password));
    assert.equal(old.status, 403);
    assert.equal((await sign(u.tech, next)).meaning, 'approval');
    u.tech.password = next;
    const audit = await testEnv()
      .db('audit_events')
      .where({ action: 'user.signing_password_set', entity_id: u.tech.username })
      .first('details');
    assert.deepEqual(audit.details, { how: 'change' });
  });

  it('answers 403 to a wrong current password and 400 to a missing field', async () => {
    assertProblem(await change(u.qa, 'not-my-password', freshPassword('x')), 403, 'signature-password-invalid');
    assertProblem(await change(u.qa, u.qa.password, undefined as unknown as string), 400, 'validation', 'body.newPassword');
    await testEnv().db('users').where({ id: u.qa.actor.userId }).update({ signing_failures: 0, signing_failure_window_start: null });
  });

  it('refuses to sign with a password older than SIGNING_PASSWORD_MAX_AGE until it is changed', async () => {
    const { aged } = await makeUsers({ aged: ['reviewer'] });
    await testEnv()
      .db('users')
      .where({ id: aged.actor.userId })
      .update({ password_changed_at: new Date(Date.now() - MAX_AGE_MS - 86_400_000) });
    const refused = await refusal(sign(aged, aged.password));
    assert.equal(refused.status, 403);
    assert.equal(refused.type, 'signing-password-expired');
    assert.match(refused.detail ?? '', /POST \/api\/v1\/me\/signing-password/);
    // An expired password may still be changed, and the new one signs.
    const next = freshPassword('renewed');
    assert.equal((await change(aged, aged.password, next)).status, 204);
    assert.equal((await sign(aged, next)).contentHash, 'a'.repeat(64));
  });

  it('refuses to sign for a person without a signing password yet', async () => {
    const { fresh } = await makeUsers({ fresh: ['reviewer'] });
    await testEnv().db('users').where({ id: fresh.actor.userId }).update({ password_hash: null, password_changed_at: null });
    const refused = await refusal(sign(fresh, 'anything-at-all'));
    assert.equal(refused.type, 'signing-password-not-set');
    assert.equal(refused.status, 403);
  });

  it('alerts IT and QA, in-app and by email, when signing locks', async () => {
    const { victim } = await makeUsers({ victim: ['approver'] });
    const mailsBefore = testEnv().mails.length;
    for (let i = 0; i < signing.maxFailures; i++) await refusal(sign(victim, `wrong-${i}`));
    const locked = await refusal(sign(victim, victim.password));
    assert.equal(locked.status, 423);
    for (const user of [u.it, u.qa]) {
      const note = await testEnv()
        .db('notifications')
        .where({ user_id: user.actor.userId, kind: 'credentials.signing_locked' })
        .first('title');
      assert.match(note.title, new RegExp(victim.username.replace(/\./g, '\\.')));
    }
    const notified = await testEnv().db('notifications').where({ user_id: u.other.actor.userId, kind: 'credentials.signing_locked' });
    assert.deepEqual(notified, [], 'people outside IT and QA are not alerted');
    await waitFor(() => {
      const to = testEnv()
        .mails.slice(mailsBefore)
        .filter((m) => m.subject?.includes('Signing locked'))
        .flatMap((m) => m.to);
      return to.includes(`${u.it.username}@lab.test`) && to.includes(`${u.qa.username}@lab.test`);
    }, 'the lockout emails');
  });
});
