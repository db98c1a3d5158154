import assert from 'node:assert/strict';
import { databaseUrlOf } from '../../activities/backups';
import { createApp } from '../../api/app';
import { startAuthentication, type ApiAuthentication } from '../../api/credentials/authentication';
import { LISTENER_APPLICATION_NAME } from '../../db/credential-notices';
import { createLogger } from '../../platform/logger';
import { assertProblem, serve } from '../api/support';
import { testApiConfig, type Platform } from '../helpers/platform';
import { makeUsers, type TestUser } from '../helpers/users';
import { waitFor } from '../helpers/wait';
import { testEnv } from '../setup/env';

/**
 * Two API processes side by side, each with its own key cache and its own LISTEN connection, caching for an hour:
 * what one revokes, the other refuses without waiting for its cache.
 */
describe('revocation reaches every API process at once', function () {
  this.timeout(120_000);
  const processes: { api: Platform['api']; auth: ApiAuthentication; close(): Promise<void> }[] = [];
  let u: Record<'tech' | 'admin', TestUser>;

  before(async () => {
    const env = testEnv();
    const log = createLogger({ LOG_LEVEL: 'silent', LOG_PRETTY: false }, 'test');
    const config = testApiConfig('credentials-two-processes', { apiKeyCacheTtlMs: 3_600_000 });
    for (let i = 0; i < 2; i++) {
      const auth = startAuthentication({ db: env.appDb, temporal: env.client, config, log }, databaseUrlOf(env.appDb));
      await auth.listener.ready;
      const server = await serve(createApp({ db: env.appDb, temporal: env.client, config, log, authenticate: auth.authenticate }));
      processes.push({ api: server.api, auth, close: async () => (await server.close(), await auth.close()) });
    }
    u = await makeUsers({ tech: ['lab_technician'], admin: ['admin'] });
  });
  after(async () => {
    for (const p of processes) await p.close();
  });

  const [a, b] = [0, 1].map((i) => ({
    me: (key: string) => processes[i].api('GET', '/api/v1/me', { key }),
    api: (...args: Parameters<Platform['api']>) => processes[i].api(...args),
  }));
  const refusedBy = async (process: typeof a, key: string) => (await process.me(key)).status === 401;

  it('a key revoked through one process is refused by the other, whose cache still held it', async () => {
    const made = await a.api('POST', '/api/v1/me/api-keys', { key: u.tech.apiKey, body: { name: 'shared' } });
    assert.equal(made.status, 201);
    assert.equal((await a.me(made.body.key)).status, 200);
    assert.equal((await b.me(made.body.key)).status, 200);
    assert.equal((await a.api('DELETE', `/api/v1/me/api-keys/${made.body.id}`, { key: u.tech.apiKey })).status, 200);
    await waitFor(() => refusedBy(b, made.body.key), 'the other process refusing the revoked key');
    assertProblem(await a.me(made.body.key), 401, 'unauthenticated');
  });

  it('a rotated key is refused by the other process too', async () => {
    const made = await a.api('POST', '/api/v1/me/api-keys', { key: u.tech.apiKey, body: { name: 'rotating' } });
    assert.equal((await b.me(made.body.key)).status, 200);
    const rotated = await b.api('POST', `/api/v1/me/api-keys/${made.body.id}/rotate`, { key: u.tech.apiKey, body: {} });
    assert.equal(rotated.status, 201);
    await waitFor(() => refusedBy(a, made.body.key), 'the other process refusing the rotated-out key');
    assert.equal((await a.me(rotated.body.key)).status, 200);
  });

  it('a deactivation notice ({"userId"}) drops every key of that user from every process', async () => {
    const { leaver } = await makeUsers({ leaver: ['author'] });
    assert.equal((await a.me(leaver.apiKey)).status, 200);
    assert.equal((await b.me(leaver.apiKey)).status, 200);
    // What the user lifecycle does on deactivation, in one transaction.
    await testEnv().db.transaction(async (trx) => {
      await trx('users').where({ id: leaver.actor.userId }).update({ active: false });
      await trx.raw("select pg_notify('labflow_credentials', ?)", [JSON.stringify({ userId: leaver.actor.userId })]);
    });
    await waitFor(async () => (await refusedBy(a, leaver.apiKey)) && (await refusedBy(b, leaver.apiKey)), 'both processes refusing');
  });

  it('ignores notices it cannot read, and listens again after its connection is cut', async () => {
    await testEnv().db.raw("select pg_notify('labflow_credentials', 'not json'), pg_notify('labflow_credentials', '{\"other\":1}')");
    assert.equal((await a.me(u.tech.apiKey)).status, 200);
    const made = await a.api('POST', '/api/v1/me/api-keys', { key: u.tech.apiKey, body: { name: 'after-reconnect' } });
    assert.equal((await b.me(made.body.key)).status, 200);
    const cut = await testEnv().db.raw(
      'select pg_terminate_backend(pid) from pg_stat_activity where application_name = ? and datname = current_database()',
      [LISTENER_APPLICATION_NAME],
    );
    assert.ok(cut.rows.length >= 2, 'both listeners were connected');
    await waitFor(async () => {
      const rows = await testEnv().db.raw(
        'select count(*)::int as n from pg_stat_activity where application_name = ? and datname = current_database()',
        [LISTENER_APPLICATION_NAME],
      );
      return rows.rows[0].n >= 2;
    }, 'the listeners reconnected');
    assert.equal((await a.api('DELETE', `/api/v1/me/api-keys/${made.body.id}`, { key: u.tech.apiKey })).status, 200);
    await waitFor(() => refusedBy(b, made.body.key), 'the other process refusing after reconnecting');
  });
});
