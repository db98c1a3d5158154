import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import { Writable } from 'node:stream';
import { SignJWT } from 'jose';
import pino from 'pino';
import { createApp } from '../../api/app';
import { createAuthenticator } from '../../api/auth';
import { oidcResolver } from '../../api/oidc';
import type { OidcSettings } from '../../api/oidc-settings';
import { versionPath } from '../helpers/documents';
import { LABFLOW_RESOURCE, OTHER_RESOURCE, startIdentityProvider, type IdentityProvider } from '../helpers/identity-provider';
import { startPlatform, testApiConfig, type ApiResponse, type Platform } from '../helpers/platform';
import { makeUser, makeUsers, type TestUser } from '../helpers/users';
import { testEnv } from '../setup/env';
import { assertProblem, oneStage, serve, underReview } from './support';

const ROLE_MAP: OidcSettings['roleMap'] = { 'lab-qa': ['qa_manager'], 'lab-docs': ['document_control', 'author'], 'lab-review': ['reviewer'] };
const HOUR_MS = 3_600_000;

function assertRefused(res: ApiResponse, check: string): void {
  assertProblem(res, 401, 'invalid-token');
  assert.equal(res.body.check, check, JSON.stringify(res.body));
  assert.match(res.headers.get('www-authenticate') ?? '', new RegExp(`error="invalid_token", error_description="${check}"`));
}

describe('single sign-on: OpenID Connect access tokens from a real provider', () => {
  let idp: IdentityProvider;
  const logLines: string[] = [];
  const log = pino(
    { level: 'info' },
    new Writable({
      write(chunk, _encoding, done) {
        logLines.push(...chunk.toString().split('\n').filter(Boolean));
        done();
      },
    }),
  );

  before(async () => {
    idp = await startIdentityProvider();
  });
  after(() => idp.close());

  const settingsFor = (overrides: Partial<OidcSettings> = {}): OidcSettings => ({
    issuer: idp.issuer,
    audiences: [LABFLOW_RESOURCE],
    clockToleranceSeconds: 30,
    usernameClaims: ['preferred_username', 'sub'],
    usernameDomains: ['lab.test'],
    rolesClaim: 'groups',
    roleMap: ROLE_MAP,
    jit: false,
    httpTimeoutMs: 5000,
    ...overrides,
  });

  /** The real app with single sign-on configured so; `now` is the clock tokens are judged by. */
  async function withApi(overrides: Partial<OidcSettings>, run: (api: Platform['api']) => Promise<void>, now?: () => Date) {
    const db = testEnv().appDb;
    const config = testApiConfig('oidc-unused');
    const oidc = oidcResolver(db, settingsFor(overrides), { log, now });
    const app = createApp({ db, temporal: testEnv().client, config, log, authenticate: createAuthenticator(db, config.apiKeyCacheTtlMs, { resolvers: [oidc] }) });
    const served = await serve(app);
    try {
      await run(served.api);
    } finally {
      await served.close();
    }
  }

  const auditOf = (username: string, action: string) =>
    testEnv().db('audit_events').where({ entity_type: 'user', entity_id: username, action }).orderBy('seq').select('actor', 'details');

  it('takes a valid token as the user it names, with the roles its groups map to, synced into the user row (audited old → new)', async () => {
    const person = await makeUser('sso', ['author']);
    const qa = await makeUser('qa', ['qa_manager']);
    await withApi({}, async (api) => {
      const token = await idp.token({ claims: { preferred_username: person.username, groups: ['lab-qa', 'lab-review', 'payroll'] } });
      const me = await api('GET', '/api/v1/me', { key: token });
      assert.equal(me.status, 200, JSON.stringify(me.body));
      assert.equal(me.body.username, person.username);
      assert.equal(me.body.userId, person.actor.userId);
      assert.deepEqual(me.body.roles, ['qa_manager', 'reviewer']);

      const row = await testEnv().db('users').where({ username: person.username }).first('roles');
      assert.deepEqual(row.roles, ['qa_manager', 'reviewer']);
      const synced = await auditOf(person.username, 'user.roles_synced');
      assert.equal(synced.length, 1);
      assert.equal(synced[0].actor, 'system:oidc');
      assert.deepEqual(synced[0].details.changes, [{ field: 'roles', old: ['author'], new: ['qa_manager', 'reviewer'] }]);
      assert.equal(synced[0].details.issuer, idp.issuer);
      // QA is told, as of any change of someone's roles.
      const told = await testEnv().db('notifications').where({ user_id: qa.actor.userId, kind: 'user.roles_synced' }).pluck('body');
      assert.equal(told.filter((b: string) => b.includes(person.username)).length, 1, JSON.stringify(told));

      // The same groups again: nothing to sync, nothing recorded.
      const again = await api('GET', '/api/v1/me', { key: await idp.token({ claims: { preferred_username: person.username, groups: ['lab-review', 'lab-qa'] } }) });
      assert.equal(again.status, 200);
      assert.equal((await auditOf(person.username, 'user.roles_synced')).length, 1);

      // The roles are the token's: an admin-only route stays closed.
      const create = await api('POST', '/api/v1/users', {
        key: token,
        body: { username: 'never.made', printedName: 'Never Made', email: 'never@lab.test', roles: ['author'] },
      });
      assertProblem(create, 403, 'forbidden');

      // The person's labflow API key keeps working beside the token, with the roles the row now holds.
      const byKey = await api('GET', '/api/v1/me', { key: person.apiKey });
      assert.equal(byKey.status, 200);
      assert.deepEqual(byKey.body.roles, ['qa_manager', 'reviewer']);
    });
  });

  it('takes the domain off an address in a configured domain, and refuses an address in another one', async () => {
    const person = await makeUser('mail', ['author']);
    await withApi({ rolesClaim: undefined }, async (api) => {
      const me = await api('GET', '/api/v1/me', { key: await idp.token({ claims: { preferred_username: `${person.username.toUpperCase()}@LAB.TEST` } }) });
      assert.equal(me.status, 200, JSON.stringify(me.body));
      assert.equal(me.body.username, person.username);
      // Without a roles claim configured, roles are labflow's own.
      assert.deepEqual(me.body.roles, ['author']);
      const other = await api('GET', '/api/v1/me', { key: await idp.token({ claims: { preferred_username: `${person.username}@elsewhere.test` } }) });
      assertRefused(other, 'username-claim');
    });
  });

  it('answers 401 naming the failed check, and never logs the token', async () => {
    const person = await makeUser('checks', ['reviewer']);
    const claims = { preferred_username: person.username, groups: ['lab-review'] };
    const otherIssuer = await startIdentityProvider();
    // A provider claiming to be the trusted issuer, signing with a key the trusted issuer never published.
    const impostor = await startIdentityProvider({ issuer: idp.issuer });
    const tokens: string[] = [];
    const token = async (from: IdentityProvider, request: Parameters<IdentityProvider['token']>[0]) => {
      const t = await from.token(request);
      tokens.push(t);
      return t;
    };
    try {
      await withApi({}, async (api) => {
        assertRefused(await api('GET', '/api/v1/me', { key: await token(otherIssuer, { claims }) }), 'issuer');
        assertRefused(await api('GET', '/api/v1/me', { key: await token(idp, { claims, resource: OTHER_RESOURCE }) }), 'audience');
        assertRefused(await api('GET', '/api/v1/me', { key: await token(impostor, { claims }) }), 'signature');
        const notBefore = Math.floor((Date.now() + HOUR_MS) / 1000);
        assertRefused(await api('GET', '/api/v1/me', { key: await token(idp, { claims: { ...claims, nbf: notBefore } }) }), 'not-yet-valid');
        assertRefused(await api('GET', '/api/v1/me', { key: 'eyJhbGciOiJSUzI1NiJ9.bm90IGpzb24.c2ln' }), 'malformed');
        // A token signed with a shared secret (made here: no provider issues such a thing) is refused for its algorithm.
        const symmetric = await new SignJWT({ preferred_username: person.username })
          .setProtectedHeader({ alg: 'HS256' })
          .setIssuer(idp.issuer)
          .setAudience(LABFLOW_RESOURCE)
          .setIssuedAt()
          .setExpirationTime('5m')
          .sign(new TextEncoder().encode('a shared secret anyone could hold'));
        assertRefused(await api('GET', '/api/v1/me', { key: symmetric }), 'algorithm');
        const stranger = await token(idp, { claims: { preferred_username: 'nobody.here', groups: ['lab-qa'] } });
        assertRefused(await api('GET', '/api/v1/me', { key: stranger }), 'unknown-user');
        assert.equal(await testEnv().db('users').where({ username: 'nobody.here' }).first('id'), undefined, 'no user made without JIT');
        // The one valid token of the lot works, so the refusals above are the checks', not the setup's.
        assert.equal((await api('GET', '/api/v1/me', { key: await token(idp, { claims }) })).status, 200);
      });
      const valid = await token(idp, { claims });
      await withApi({}, async (api) => assertRefused(await api('GET', '/api/v1/me', { key: valid }), 'expired'), () => new Date(Date.now() + HOUR_MS));
      await withApi({}, async (api) => assertRefused(await api('GET', '/api/v1/me', { key: valid }), 'not-yet-valid'), () => new Date(Date.now() - HOUR_MS));
      // Within the clock tolerance, a token just past its expiry still passes.
      await withApi(
        { clockToleranceSeconds: 60 },
        async (api) => assert.equal((await api('GET', '/api/v1/me', { key: valid })).status, 200),
        () => new Date(Date.now() + 300_000 + 30_000),
      );
    } finally {
      await Promise.all([otherIssuer.close(), impostor.close()]);
    }
    const logged = logLines.join('\n');
    assert.match(logged, /bearer token refused/);
    for (const t of tokens) assert.ok(!logged.includes(t.split('.')[2]), 'no token (nor its signature) in the logs');
  });

  it('refuses a deactivated user’s valid token', async () => {
    const person = await makeUser('leaver', ['reviewer']);
    await testEnv().db('users').where({ username: person.username }).update({ active: false });
    await withApi({ jit: true }, async (api) => {
      const res = await api('GET', '/api/v1/me', { key: await idp.token({ claims: { preferred_username: person.username, groups: ['lab-review'] } }) });
      assertRefused(res, 'user-deactivated');
    });
  });

  it('creates an unknown user on their first token when JIT is on (audited, no signing password), and not when it is off', async () => {
    const username = `jit.${Date.now().toString(36)}`;
    const claims = { preferred_username: username, name: 'Jo Newcomer', email: `${username}@lab.test`, groups: ['lab-docs'] };
    await withApi({ jit: false }, async (api) => {
      assertRefused(await api('GET', '/api/v1/me', { key: await idp.token({ claims }) }), 'unknown-user');
    });
    assert.equal(await testEnv().db('users').where({ username }).first('id'), undefined);
    await withApi({ jit: true }, async (api) => {
      // No address to reach them at: not created (notifications go by email).
      const { email: _email, ...withoutEmail } = claims;
      assertRefused(await api('GET', '/api/v1/me', { key: await idp.token({ claims: withoutEmail }) }), 'claims');
      assert.equal(await testEnv().db('users').where({ username }).first('id'), undefined);
      const [first, second] = await Promise.all([
        api('GET', '/api/v1/me', { key: await idp.token({ claims }) }),
        api('GET', '/api/v1/me', { key: await idp.token({ claims }) }),
      ]);
      assert.equal(first.status, 200, JSON.stringify(first.body));
      assert.equal(second.status, 200, JSON.stringify(second.body));
      assert.equal(first.body.userId, second.body.userId);
      assert.deepEqual(first.body.roles, ['author', 'document_control']);
      assert.equal(first.body.printedName, 'Jo Newcomer');
    });
    const row = await testEnv().db('users').where({ username }).first('email', 'password_hash', 'active', 'roles');
    assert.deepEqual({ ...row }, { email: `${username}@lab.test`, password_hash: null, active: true, roles: ['author', 'document_control'] });
    assert.equal(await testEnv().db('api_keys').join('users', 'users.id', 'api_keys.user_id').where({ username }).first('api_keys.id'), undefined);
    const created = await auditOf(username, 'user.created');
    assert.equal(created.length, 1, 'created once, recorded once');
    assert.deepEqual(created[0].details, { source: 'oidc', issuer: idp.issuer, roles: ['author', 'document_control'], signingPassword: false });
  });

  it('answers 503, not 500, when the identity provider cannot be reached', async () => {
    const closed = createServer();
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', () => resolve()));
    const deadIssuer = `http://127.0.0.1:${(closed.address() as { port: number }).port}`;
    await new Promise<void>((resolve) => closed.close(() => resolve()));
    const stand = await startIdentityProvider({ issuer: deadIssuer });
    const person = await makeUser('outage', ['reviewer']);
    try {
      await withApi({ issuer: deadIssuer }, async (api) => {
        const res = await api('GET', '/api/v1/me', { key: await stand.token({ claims: { preferred_username: person.username } }) });
        assertProblem(res, 503, 'dependency-unavailable');
        assert.match(res.body.detail, /identity provider/);
        // API keys do not depend on the provider.
        assert.equal((await api('GET', '/api/v1/me', { key: person.apiKey })).status, 200);
      });
    } finally {
      await stand.close();
    }
  });

  describe('an electronic signature', () => {
    let p: Platform;
    let u: Record<'author' | 'signer', TestUser>;
    before(async () => {
      p = await startPlatform({ oidc: settingsFor({ jit: true }) });
      u = await makeUsers({ author: ['author'], signer: ['reviewer'] });
    });
    after(() => p.stop());

    it('still needs the signer’s labflow signing password, whatever the sign-in; a JIT user has none until they enrol', async () => {
      const newcomer = `jit.signer.${Date.now().toString(36)}`;
      const newcomerToken = await idp.token({ claims: { preferred_username: newcomer, email: `${newcomer}@lab.test`, groups: ['lab-review'] } });
      assert.equal((await p.api('GET', '/api/v1/me', { key: newcomerToken })).status, 200);
      const doc = await underReview(p, u.author, oneStage([u.signer, { username: newcomer } as TestUser]));
      const decide = (key: string, password: string) =>
        p.api('POST', `${versionPath(doc.number, doc.version)}/decisions`, {
          key,
          body: { decision: 'approve', signature: { password, meaning: 'approval', contentHash: doc.contentHash } },
        });
      const signerToken = await idp.token({ claims: { preferred_username: u.signer.username, groups: ['lab-review'] } });

      assertProblem(await decide(newcomerToken, 'any password at all'), 403, 'signing-password-not-set');
      assertProblem(await decide(signerToken, 'not-the-signing-password'), 403, 'signature-password-invalid');
      const signed = await decide(signerToken, u.signer.password);
      assert.ok(signed.status < 300, JSON.stringify(signed.body));
      const rejected = await testEnv()
        .db('audit_events')
        .where({ action: 'signature.password_rejected', entity_id: doc.number })
        .select('actor');
      // The newcomer had no password to check (refused as not set); the signer's wrong one is on the trail.
      assert.deepEqual(rejected.map((r) => r.actor), [u.signer.username]);
    });
  });
});
