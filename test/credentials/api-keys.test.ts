import assert from 'node:assert/strict';
import { assertProblem } from '../api/support';
import { startPlatform, TEST_CREDENTIAL_SETTINGS, type Platform } from '../helpers/platform';
import { makeUsers, type TestUser } from '../helpers/users';
import { testEnv } from '../setup/env';
import { waitFor } from '../helpers/wait';
import { DEFAULT_CREDENTIAL_SETTINGS } from '../../api/credentials/settings';

describe('API keys people own: named, expiring, rotated and revoked', function () {
  this.timeout(120_000);
  let p: Platform;
  let u: Record<'admin' | 'tech' | 'other', TestUser>;

  before(async () => {
    // A long cache: every refusal below takes effect at once, not when the cache happens to expire.
    p = await startPlatform({
      apiConfig: { apiKeyCacheTtlMs: 3_600_000, credentials: { ...TEST_CREDENTIAL_SETTINGS, apiKeyMaxPerUser: 4 } },
    });
    u = await makeUsers({ admin: ['admin'], tech: ['lab_technician'], other: ['author'] });
  });
  after(async () => p?.stop());

  const me = (key: string) => p.api('GET', '/api/v1/me', { key });
  const create = (user: TestUser, body: Record<string, unknown>) => p.api('POST', '/api/v1/me/api-keys', { key: user.apiKey, body });
  const keyRow = (id: string) => testEnv().db('api_keys').where({ id }).first();

  it('creates a named key shown once, which works, expires by default and lists without its secret', async () => {
    const res = await create(u.tech, { name: 'balance-01' });
    assert.equal(res.status, 201, JSON.stringify(res.body));
    assert.match(res.body.key, /^lf_[0-9a-f]{12}_/);
    assert.equal(res.body.state, 'active');
    const lifetime = Date.parse(res.body.expiresAt) - Date.parse(res.body.createdAt);
    assert.ok(Math.abs(lifetime - DEFAULT_CREDENTIAL_SETTINGS.apiKeyDefaultLifetimeMs) < 60_000, `lifetime ${lifetime}`);
    assert.equal((await me(res.body.key)).body.username, u.tech.username);
    const list = await p.api('GET', '/api/v1/me/api-keys', { key: u.tech.apiKey });
    assert.equal(list.status, 200);
    const listed = list.body.items.find((k: { id: string }) => k.id === res.body.id);
    assert.equal(listed.name, 'balance-01');
    assert.equal(listed.key, undefined);
    assert.equal(JSON.stringify(list.body).includes(res.body.key), false);
    assert.equal((await keyRow(res.body.id)).key_hash.length, 64);
  });

  it('refuses a taken name (409), an expiry in the past or beyond the maximum (422), and more keys than allowed (422)', async () => {
    const { owner } = await makeUsers({ owner: ['author'] });
    assert.equal((await create(owner, { name: 'dup' })).status, 201);
    assertProblem(await create(owner, { name: 'dup' }), 409, 'api-key-name-taken');
    assertProblem(
      await create(owner, { name: 'past', expiresAt: new Date(Date.now() - 60_000).toISOString() }),
      422,
      'api-key-expiry-past',
    );
    const far = new Date(Date.now() + 2 * DEFAULT_CREDENTIAL_SETTINGS.apiKeyMaxLifetimeMs).toISOString();
    const tooLong = await create(owner, { name: 'far', expiresAt: far });
    assertProblem(tooLong, 422, 'api-key-lifetime-too-long');
    assert.equal(tooLong.body.rule, 'api-key-lifetime-too-long');
    assertProblem(await create(owner, { name: '' }), 400, 'validation', 'body.name');
    assert.equal((await create(owner, { name: 'k3' })).status, 201);
    assert.equal((await create(owner, { name: 'k4' })).status, 201);
    // initial, dup, k3, k4: the fifth is over the limit of four.
    assertProblem(await create(owner, { name: 'k5' }), 422, 'api-key-limit');
    const names = (await testEnv().db('api_keys').where({ user_id: owner.actor.userId }).pluck('label')).sort();
    assert.deepEqual(names, ['dup', 'initial', 'k3', 'k4']);
  });

  it('refuses a key past its expiry, lists it as expired and does not rotate it', async () => {
    const made = await create(u.tech, { name: 'short-lived' });
    await testEnv()
      .db('api_keys')
      .where({ id: made.body.id })
      .update({ expires_at: new Date(Date.now() - 1000) });
    assertProblem(await me(made.body.key), 401, 'unauthenticated');
    const listed = (await p.api('GET', '/api/v1/me/api-keys', { key: u.tech.apiKey })).body.items.find(
      (k: { id: string }) => k.id === made.body.id,
    );
    assert.equal(listed.state, 'expired');
    assertProblem(
      await p.api('POST', `/api/v1/me/api-keys/${made.body.id}/rotate`, { key: u.tech.apiKey, body: {} }),
      409,
      'api-key-expired',
    );
  });

  it('revokes a key at once although it is cached, and refuses to revoke it twice', async () => {
    const made = await create(u.tech, { name: 'to-revoke' });
    assert.equal((await me(made.body.key)).status, 200);
    const revoked = await p.api('DELETE', `/api/v1/me/api-keys/${made.body.id}`, { key: u.tech.apiKey });
    assert.equal(revoked.status, 200);
    assert.equal(revoked.body.state, 'revoked');
    assertProblem(await me(made.body.key), 401, 'unauthenticated');
    assertProblem(await p.api('DELETE', `/api/v1/me/api-keys/${made.body.id}`, { key: u.tech.apiKey }), 409, 'api-key-revoked');
    const audit = await testEnv().db('audit_events').where({ action: 'api_key.revoked', entity_id: u.tech.username }).first('details');
    assert.equal(audit.details.keyId, made.body.id);
  });

  it("answers 404 for someone else's key or an unknown one, and 400 for a malformed ID", async () => {
    const theirs = await create(u.other, { name: 'mine' });
    assertProblem(await p.api('DELETE', `/api/v1/me/api-keys/${theirs.body.id}`, { key: u.tech.apiKey }), 404, 'not-found');
    assertProblem(await p.api('POST', `/api/v1/me/api-keys/${theirs.body.id}/rotate`, { key: u.tech.apiKey, body: {} }), 404, 'not-found');
    assertProblem(
      await p.api('DELETE', '/api/v1/me/api-keys/00000000-0000-4000-8000-000000000000', { key: u.tech.apiKey }),
      404,
      'not-found',
    );
    assertProblem(await p.api('DELETE', '/api/v1/me/api-keys/not-a-uuid', { key: u.tech.apiKey }), 400, 'validation', 'params.keyId');
    assert.equal((await me(theirs.body.key)).status, 200);
  });

  describe('rotation', () => {
    it('replaces the key: the new one works and the old one is refused at once', async () => {
      const made = await create(u.tech, { name: 'lims-link' });
      assert.equal((await me(made.body.key)).status, 200);
      const rotated = await p.api('POST', `/api/v1/me/api-keys/${made.body.id}/rotate`, { key: u.tech.apiKey, body: {} });
      assert.equal(rotated.status, 201, JSON.stringify(rotated.body));
      assert.equal(rotated.body.name, 'lims-link');
      assert.notEqual(rotated.body.key, made.body.key);
      assert.equal(rotated.body.previous.state, 'revoked');
      assert.equal(rotated.body.previous.replacedBy, rotated.body.id);
      assert.equal((await me(rotated.body.key)).status, 200);
      assertProblem(await me(made.body.key), 401, 'unauthenticated');
      assertProblem(
        await p.api('POST', `/api/v1/me/api-keys/${made.body.id}/rotate`, { key: u.tech.apiKey, body: {} }),
        409,
        'api-key-revoked',
      );
    });

    it('keeps the old key working for the overlap asked for, within the maximum', async () => {
      const { owner } = await makeUsers({ owner: ['lab_technician'] });
      const made = await create(owner, { name: 'instrument-7' });
      assertProblem(
        await p.api('POST', `/api/v1/me/api-keys/${made.body.id}/rotate`, { key: owner.apiKey, body: { overlap: '48h' } }),
        422,
        'api-key-overlap-too-long',
      );
      const rotated = await p.api('POST', `/api/v1/me/api-keys/${made.body.id}/rotate`, { key: owner.apiKey, body: { overlap: '1h' } });
      assert.equal(rotated.status, 201);
      assert.equal(rotated.body.previous.state, 'active');
      assert.ok(Date.parse(rotated.body.previous.expiresAt) <= Date.now() + 3_600_000);
      assert.equal((await me(made.body.key)).status, 200);
      assert.equal((await me(rotated.body.key)).status, 200);
      // A key on its way out is rotated once only.
      assertProblem(
        await p.api('POST', `/api/v1/me/api-keys/${made.body.id}/rotate`, { key: owner.apiKey, body: {} }),
        409,
        'api-key-rotated',
      );
      assertProblem(
        await p.api('POST', `/api/v1/me/api-keys/${made.body.id}/rotate`, { key: owner.apiKey, body: { overlap: 'soon' } }),
        400,
        'validation',
      );
    });
  });

  describe("an admin and other people's keys", () => {
    it('lists and revokes anyone’s keys as admin; 403 for others, 404 for an unknown user', async () => {
      const made = await create(u.other, { name: 'leaked' });
      const list = await p.api('GET', `/api/v1/users/${u.other.username}/api-keys`, { key: u.admin.apiKey });
      assert.equal(list.status, 200);
      assert.ok(list.body.items.some((k: { id: string }) => k.id === made.body.id));
      assertProblem(await p.api('GET', `/api/v1/users/${u.other.username}/api-keys`, { key: u.tech.apiKey }), 403, 'forbidden');
      assertProblem(
        await p.api('DELETE', `/api/v1/users/${u.other.username}/api-keys/${made.body.id}`, { key: u.tech.apiKey }),
        403,
        'forbidden',
      );
      assertProblem(await p.api('GET', '/api/v1/users/nobody.here/api-keys', { key: u.admin.apiKey }), 404, 'not-found');
      assertProblem(
        await p.api('DELETE', `/api/v1/users/${u.tech.username}/api-keys/${made.body.id}`, { key: u.admin.apiKey }),
        404,
        'not-found',
      );
      const revoked = await p.api('DELETE', `/api/v1/users/${u.other.username}/api-keys/${made.body.id}`, { key: u.admin.apiKey });
      assert.equal(revoked.status, 200);
      assertProblem(
        await p.api('DELETE', `/api/v1/users/${u.other.username}/api-keys/${made.body.id}`, { key: u.admin.apiKey }),
        409,
        'api-key-revoked',
      );
      assertProblem(await me(made.body.key), 401, 'unauthenticated');
    });

    it("issues a key to an active user (audited), never to a deactivated one; others get 403", async () => {
      const issue = (username: string, key = u.admin.apiKey) =>
        p.api('POST', `/api/v1/users/${username}/api-keys`, { key, body: { name: 'issued-by-admin' } });
      assertProblem(await issue(u.other.username, u.tech.apiKey), 403, 'forbidden');
      const issued = await issue(u.other.username);
      assert.equal(issued.status, 201, JSON.stringify(issued.body));
      const who = await me(issued.body.key);
      assert.equal(who.status, 200);
      assert.equal(who.body.username, u.other.username);
      const audited = await testEnv().db('audit_events').where({ entity_type: 'user', entity_id: u.other.username, actor: u.admin.username });
      assert.ok(audited.some((e) => /api_key/.test(e.action)), JSON.stringify(audited.map((e) => e.action)));

      const [gone] = Object.values(await makeUsers({ gone: ['author'] }));
      await testEnv().db('users').where({ id: gone.actor.userId }).update({ active: false });
      assertProblem(await issue(gone.username), 422, 'user-inactive');
      assert.equal((await testEnv().db('api_keys').where({ user_id: gone.actor.userId, label: 'issued-by-admin' })).length, 0);
      assertProblem(await issue('nobody.here'), 404, 'not-found');
    });
  });

  it('writes last_used_at on use, at most once a minute per key and process', async () => {
    const made = await create(u.tech, { name: 'last-used' });
    assert.equal((await keyRow(made.body.id)).last_used_at, null);
    assert.equal((await me(made.body.key)).status, 200);
    const first = (await keyRow(made.body.id)).last_used_at;
    assert.ok(first instanceof Date);
    assert.equal((await me(made.body.key)).status, 200);
    assert.equal((await keyRow(made.body.id)).last_used_at.getTime(), first.getTime());
  });

  it('ends a codec session opened with a key when that key is revoked', async () => {
    const { operator } = await makeUsers({ operator: ['it_operator'] });
    const made = await create(operator, { name: 'web-ui' });
    const session = await p.api('POST', '/codec/session', { key: made.body.key });
    assert.equal(session.status, 200, JSON.stringify(session.body));
    const cookie = `labflow_codec=${/labflow_codec=([^;]+)/.exec(session.headers.get('set-cookie') ?? '')?.[1]}`;
    const decode = () => p.api('POST', '/codec/decode', { headers: { cookie }, body: { payloads: [] } });
    assert.equal((await decode()).status, 200);
    assert.equal((await p.api('DELETE', `/api/v1/me/api-keys/${made.body.id}`, { key: operator.apiKey })).status, 200);
    assertProblem(await decode(), 401, 'unauthenticated');
  });
  it('creates a key while another transaction holds the audit trail lock and refers to its owner: no deadlock', async () => {
    const { owner } = await makeUsers({ owner: ['author'] });
    const db = testEnv().db;
    const other = await db.transaction();
    try {
      // The other transaction holds the lock every audit append takes, as a workflow step writing an event does.
      await other.raw(`select pg_advisory_xact_lock(hashtext('labflow.audit_events'))`);
      const creating = create(owner, { name: 'while-locked' });
      // The creation has locked its owner (nothing else locks a new user) and goes on to the audit trail lock.
      await waitFor(async () => {
        try {
          await db.raw('select id from users where id = ? for share nowait', [owner.actor.userId]);
          return null;
        } catch (err) {
          if ((err as { code?: string }).code === '55P03') return true;
          throw err;
        }
      }, 'the key creation locking its owner');
      // A row that refers to the owner (a foreign-key check) must not wait for the creation's lock on the owner.
      await other('notifications').insert({ idempotency_key: `lock-test-${owner.username}`, user_id: owner.actor.userId, kind: 'test', title: 't', body: 'b' });
      await other.rollback();
      const res = await creating;
      assert.equal(res.status, 201, JSON.stringify(res.body));
    } finally {
      if (!other.isCompleted()) await other.rollback();
    }
  });
});
