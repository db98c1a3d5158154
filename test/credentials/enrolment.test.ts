import assert from 'node:assert/strict';
import { SCRUBBED } from '../../activities/notifications';
import { assertProblem } from '../api/support';
import { startPlatform, type Platform } from '../helpers/platform';
import { makeUsers, type TestUser } from '../helpers/users';
import { waitFor } from '../helpers/wait';
import { testEnv } from '../setup/env';
import { enrolmentTokenMailedTo, freshPassword } from './support';

describe('enrolment: people set their own signing password with a one-time emailed token', function () {
  this.timeout(120_000);
  let p: Platform;
  let u: Record<'admin' | 'tech', TestUser>;

  before(async () => {
    p = await startPlatform();
    u = await makeUsers({ admin: ['admin'], tech: ['lab_technician'] });
  });
  after(async () => p?.stop());

  const newPerson = async () => {
    const username = `new.${Math.random().toString(36).slice(2, 8)}`;
    const email = `${username}@lab.test`;
    const mailsBefore = testEnv().mails.length;
    const res = await p.api('POST', '/api/v1/users', {
      key: u.admin.apiKey,
      body: { username, printedName: 'New Person', email, roles: ['lab_technician'] },
    });
    assert.equal(res.status, 201, JSON.stringify(res.body));
    return { username, email, apiKey: res.body.apiKey as string, res, token: await enrolmentTokenMailedTo(email, mailsBefore) };
  };
  const canChange = (apiKey: string, currentPassword: string, newPassword: string) =>
    p.api('POST', '/api/v1/me/signing-password', { key: apiKey, body: { currentPassword, newPassword } });

  it('emails the token by SMTP, keeps only its hash, and lets the person set a password the admin never saw', async () => {
    const person = await newPerson();
    assert.equal(person.res.body.enrolment.emailedTo, person.email);
    assert.ok(Date.parse(person.res.body.enrolment.expiresAt) > Date.now());
    assert.equal(JSON.stringify(person.res.body).includes(person.token), false, 'the admin never sees the token');

    const user = await testEnv().db('users').where({ username: person.username }).first('id', 'password_hash');
    assert.equal(user.password_hash, null);
    const stored = await testEnv().db('enrolment_tokens').where({ user_id: user.id }).first('token_hash');
    assert.match(stored.token_hash, /^[0-9a-f]{64}$/);
    assert.notEqual(stored.token_hash, person.token);
    // Once delivered, the outbox keeps no copy of the token either.
    await waitFor(async () => {
      const bodies = await testEnv().db('email_outbox').where('to_address', 'like', `%${person.email}%`).pluck('body');
      return bodies.length === 1 && bodies[0] === SCRUBBED;
    }, 'the enrolment email scrubbed after sending');

    const password = freshPassword('enrol');
    const enrolled = await p.api('POST', '/api/v1/enrolment', { body: { token: person.token, password } });
    assert.equal(enrolled.status, 200, JSON.stringify(enrolled.body));
    assert.equal(enrolled.body.username, person.username);
    // The password works as the person's signing password: a change that re-verifies it is accepted.
    assert.equal((await canChange(person.apiKey, password, freshPassword('next'))).status, 204);
  });

  it('accepts a token once: the second use is 409 and changes nothing', async () => {
    const person = await newPerson();
    const first = freshPassword('first');
    assert.equal((await p.api('POST', '/api/v1/enrolment', { body: { token: person.token, password: first } })).status, 200);
    const before = await testEnv().db('users').where({ username: person.username }).first('password_hash');
    const again = await p.api('POST', '/api/v1/enrolment', { body: { token: person.token, password: freshPassword('again') } });
    assertProblem(again, 409, 'enrolment-token-used');
    assert.deepEqual(await testEnv().db('users').where({ username: person.username }).first('password_hash'), before);
  });

  it('refuses an expired token (409), an unknown one (404) and a malformed one (400)', async () => {
    const person = await newPerson();
    await testEnv()
      .db('enrolment_tokens')
      .whereIn('user_id', testEnv().db('users').where({ username: person.username }).select('id'))
      .update({ created_at: testEnv().db.raw("now() - interval '2 hours'"), expires_at: testEnv().db.raw("now() - interval '1 hour'") });
    assertProblem(
      await p.api('POST', '/api/v1/enrolment', { body: { token: person.token, password: freshPassword('late') } }),
      409,
      'enrolment-token-expired',
    );
    const unknown = `lfe_${'A'.repeat(43)}`;
    assertProblem(await p.api('POST', '/api/v1/enrolment', { body: { token: unknown, password: freshPassword('x') } }), 404, 'not-found');
    assertProblem(
      await p.api('POST', '/api/v1/enrolment', { body: { token: 'lfe_short', password: 'x' } }),
      400,
      'validation',
      'body.token',
    );
    assertProblem(await p.api('POST', '/api/v1/enrolment', { body: { token: unknown } }), 400, 'validation', 'body.password');
    const { password_hash } = await testEnv().db('users').where({ username: person.username }).first('password_hash');
    assert.equal(password_hash, null);
  });

  it('refuses a password that breaks the policy with 422 naming the rule, and leaves the token usable', async () => {
    const person = await newPerson();
    const res = await p.api('POST', '/api/v1/enrolment', { body: { token: person.token, password: 'short' } });
    assertProblem(res, 422, 'password-too-short');
    assert.equal(res.body.rule, 'password-too-short');
    assert.equal((await p.api('POST', '/api/v1/enrolment', { body: { token: person.token, password: freshPassword('ok') } })).status, 200);
  });

  it('no longer takes an admin-chosen password when creating a user', async () => {
    const res = await p.api('POST', '/api/v1/users', {
      key: u.admin.apiKey,
      body: { username: 'chosen.pw', printedName: 'Chosen', email: 'chosen@lab.test', roles: ['author'], password: 'admin-knows-this-1' },
    });
    assertProblem(res, 400, 'validation', 'body.password');
    assert.equal(await testEnv().db('users').where({ username: 'chosen.pw' }).first('id'), undefined);
  });

  describe('reset: the admin triggers a new enrolment', () => {
    it('stops the old password at once, supersedes the old token and emails a new one', async () => {
      const person = await newPerson();
      const old = freshPassword('old');
      assert.equal((await p.api('POST', '/api/v1/enrolment', { body: { token: person.token, password: old } })).status, 200);
      const staleToken = person.token;

      const mailsBefore = testEnv().mails.length;
      const reset = await p.api('POST', `/api/v1/users/${person.username}/enrolment`, { key: u.admin.apiKey });
      assert.equal(reset.status, 201, JSON.stringify(reset.body));
      assert.equal(reset.body.emailedTo, person.email);
      const token = await enrolmentTokenMailedTo(person.email, mailsBefore);

      assertProblem(await canChange(person.apiKey, old, freshPassword('n')), 409, 'signing-password-not-set');
      assertProblem(
        await p.api('POST', '/api/v1/enrolment', { body: { token: staleToken, password: freshPassword('s') } }),
        409,
        'enrolment-token-used',
      );
      // The reset password may not come back.
      assertProblem(await p.api('POST', '/api/v1/enrolment', { body: { token, password: old } }), 422, 'password-reused');
      assert.equal((await p.api('POST', '/api/v1/enrolment', { body: { token, password: freshPassword('new') } })).status, 200);
    });

    it('supersedes an unused token when a new one is issued', async () => {
      const person = await newPerson();
      assert.equal((await p.api('POST', `/api/v1/users/${person.username}/enrolment`, { key: u.admin.apiKey })).status, 201);
      assertProblem(
        await p.api('POST', '/api/v1/enrolment', { body: { token: person.token, password: freshPassword('x') } }),
        409,
        'enrolment-token-superseded',
      );
    });

    it('answers 403 to a non-admin, 404 for an unknown user and 409 for a deactivated one', async () => {
      assertProblem(await p.api('POST', `/api/v1/users/${u.admin.username}/enrolment`, { key: u.tech.apiKey }), 403, 'forbidden');
      assertProblem(await p.api('POST', '/api/v1/users/nobody.here/enrolment', { key: u.admin.apiKey }), 404, 'not-found');
      const person = await newPerson();
      await testEnv().db('users').where({ username: person.username }).update({ active: false });
      const before = await testEnv().db('enrolment_tokens').count('* as n').first();
      assertProblem(await p.api('POST', `/api/v1/users/${person.username}/enrolment`, { key: u.admin.apiKey }), 409, 'user-inactive');
      assert.deepEqual(await testEnv().db('enrolment_tokens').count('* as n').first(), before);
    });
  });
});
