import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { DEFAULT_CREDENTIAL_SETTINGS } from '../../api/credentials/settings';
import { assertProblem } from '../api/support';
import { startPlatform, type Platform } from '../helpers/platform';
import { makeUsers, type TestUser } from '../helpers/users';
import { waitFor } from '../helpers/wait';
import { testEnv } from '../setup/env';

describe('repeated failed API keys alert IT and QA', function () {
  this.timeout(120_000);
  const THRESHOLD = 3;
  let p: Platform;
  let u: Record<'it' | 'qa' | 'author', TestUser>;

  before(async () => {
    p = await startPlatform({ apiConfig: { credentials: { ...DEFAULT_CREDENTIAL_SETTINGS, failedKeyAlertThreshold: THRESHOLD } } });
    u = await makeUsers({ it: ['it_operator'], qa: ['qa_manager'], author: ['author'] });
  });
  after(async () => p?.stop());

  it('counts wrong keys by prefix and alerts once per window, in-app and by email, naming no secret', async () => {
    const prefix = randomBytes(6).toString('hex');
    const guess = () => `lf_${prefix}_${randomBytes(24).toString('base64url')}`;
    const mailsBefore = testEnv().mails.length;
    const key = `failed-api-keys:prefix:${prefix}`;
    for (let i = 0; i < THRESHOLD - 1; i++) assertProblem(await p.api('GET', '/api/v1/me', { key: guess() }), 401, 'unauthenticated');
    assert.equal(
      await testEnv().db('audit_events').where('idempotency_key', 'like', `${key}:%`).first('seq'),
      undefined,
      'no alert below the threshold',
    );

    const last = guess();
    assertProblem(await p.api('GET', '/api/v1/me', { key: last }), 401, 'unauthenticated');
    for (let i = 0; i < 2; i++) assertProblem(await p.api('GET', '/api/v1/me', { key: guess() }), 401, 'unauthenticated');

    const audits = await testEnv().db('audit_events').where('idempotency_key', 'like', `${key}:%`).select('action', 'details');
    assert.equal(audits.length, 1, 'one alert per window');
    assert.equal(audits[0].action, 'credentials.failed_api_keys');
    assert.equal(audits[0].details.prefix, prefix);
    for (const user of [u.it, u.qa]) {
      const notes = await testEnv()
        .db('notifications')
        .where({ user_id: user.actor.userId, kind: 'credentials.failed_api_keys' })
        .where('idempotency_key', 'like', `${key}:%`)
        .select('title', 'body');
      assert.equal(notes.length, 1);
      assert.match(notes[0].title, new RegExp(prefix));
      assert.equal(notes[0].body.includes(last), false, 'the alert quotes no key');
    }
    assert.deepEqual(
      await testEnv().db('notifications').where({ user_id: u.author.actor.userId, kind: 'credentials.failed_api_keys' }),
      [],
    );
    await waitFor(() => {
      const to = testEnv()
        .mails.slice(mailsBefore)
        .filter((m) => m.subject?.includes(prefix))
        .flatMap((m) => m.to);
      return to.includes(`${u.it.username}@lab.test`) && to.includes(`${u.qa.username}@lab.test`);
    }, 'the alert emails');
  });

  it('does not count a key that works', async () => {
    const { prefix } = await testEnv().db('api_keys').where({ user_id: u.author.actor.userId }).first('prefix');
    for (let i = 0; i < THRESHOLD + 1; i++) assert.equal((await p.api('GET', '/api/v1/me', { key: u.author.apiKey })).status, 200);
    assert.equal(await testEnv().db('api_key_failures').where({ prefix }).first('id'), undefined);
  });
});
