import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { networkInterfaces, tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadConfig } from '../../common/config';
import { freePort } from '../../scripts/lib/free-port';
import { isAccepting } from '../../scripts/lib/ports';
import { StartError } from '../../scripts/lib/say';
import { startTemporalUi, temporalUiBinary, temporalUiSettings, type TemporalUi } from '../../scripts/lib/temporal-ui';
import { clusterCertDir } from '../helpers/cluster-certificates';
import { startIdentityProvider, type IdentityProvider } from '../helpers/identity-provider';
import { testEnv } from '../setup/env';
import { testTemporalKind } from '../setup/test-temporal';

/**
 * The Temporal Web UI server as `npm run start:cluster` configures it (scripts/lib/temporal-ui.ts), in front of the
 * test cluster: sign-in at a real OpenID provider when a client is configured, write actions off, and loopback only
 * when no sign-in is configured.
 */
const cluster = () => ({ address: testEnv().temporalEnv.TEMPORAL_ADDRESS, certDir: clusterCertDir() });

/** A browser's cookie jar, reduced to what a sign-in needs: name=value, whatever host or path set it. */
class Cookies {
  private readonly values = new Map<string, string>();
  take(response: Response): void {
    for (const line of response.headers.getSetCookie()) {
      const [pair] = line.split(';');
      const at = pair.indexOf('=');
      this.values.set(pair.slice(0, at).trim(), pair.slice(at + 1).trim());
    }
  }
  get(name: string): string | undefined {
    return this.values.get(name);
  }
  header(): string {
    return [...this.values].map(([k, v]) => `${k}=${v}`).join('; ');
  }
}

async function startUi(env: Record<string, string>): Promise<{ ui: TemporalUi; stop: () => Promise<void> }> {
  const root = mkdtempSync(join(tmpdir(), 'labflow-ui-'));
  const ui = await startTemporalUi({ config: loadConfig(env), temporal: cluster(), say: () => undefined, root }).catch((err: unknown) => {
    rmSync(root, { recursive: true, force: true });
    throw err;
  });
  return {
    ui,
    stop: async () => {
      await ui.stop();
      rmSync(root, { recursive: true, force: true });
    },
  };
}

describe('the Temporal Web UI server', function () {
  this.timeout(240_000);

  before(function () {
    if (testTemporalKind() !== 'cluster') this.skip();
    assert.ok(existsSync(temporalUiBinary()), `${temporalUiBinary()} is built (scripts/test-cluster.sh builds it)`);
  });

  describe('with sign-in configured', () => {
    const clientId = 'temporal-ui';
    const clientSecret = randomUUID();
    let idp: IdentityProvider;
    let running: Awaited<ReturnType<typeof startUi>>;
    let base: string;

    before(async () => {
      const port = await freePort();
      base = `http://127.0.0.1:${port}`;
      idp = await startIdentityProvider({ webClient: { clientId, clientSecret, redirectUri: `${base}/auth/sso/callback`, signInAs: 'rita.reviewer' } });
      running = await startUi({
        TEMPORAL_UI_PORT: String(port),
        TEMPORAL_UI_URL: base,
        OIDC_ISSUER: idp.issuer,
        OIDC_AUDIENCE: 'https://labflow.test/api',
        TEMPORAL_UI_OIDC_CLIENT_ID: clientId,
        TEMPORAL_UI_OIDC_CLIENT_SECRET: clientSecret,
      });
    });
    after(async () => {
      await running?.stop();
      await idp?.close();
    });

    it('says sign-in is on and write actions are off', async () => {
      assert.equal(running.ui.signIn, true);
      const settings = (await (await fetch(`${base}/api/v1/settings`)).json()) as { Auth: { Enabled: boolean }; DisableWriteActions: boolean };
      assert.equal(settings.Auth.Enabled, true);
      assert.equal(settings.DisableWriteActions, true);
    });

    it('refuses its API without a token, with a made-up one, and with a token the provider issued to another client', async () => {
      const statusWith = async (headers: Record<string, string>) => (await fetch(`${base}/api/v1/namespaces`, { headers })).status;
      assert.equal(await statusWith({}), 401, 'no token');
      assert.equal(await statusWith({ authorization: 'Bearer not-a-token' }), 401, 'made up');
      assert.equal(await statusWith({ authorization: `Bearer ${await idp.token()}` }), 401, "labflow API's token, not the UI's");
    });

    it("sends /auth/sso to the provider's authorization endpoint as the configured client, and a completed sign-in reads but cannot write", async () => {
      const discovery = (await (await fetch(`${idp.url}/.well-known/openid-configuration`)).json()) as { authorization_endpoint: string };
      const cookies = new Cookies();
      const sso = await fetch(`${base}/auth/sso`, { redirect: 'manual' });
      cookies.take(sso);
      assert.equal(sso.status, 302);
      const toProvider = new URL(sso.headers.get('location') ?? '');
      assert.equal(`${toProvider.origin}${toProvider.pathname}`, discovery.authorization_endpoint);
      assert.equal(toProvider.searchParams.get('client_id'), clientId);
      assert.equal(toProvider.searchParams.get('redirect_uri'), `${base}/auth/sso/callback`);
      assert.equal(toProvider.searchParams.get('response_type'), 'code');
      assert.deepEqual(toProvider.searchParams.get('scope')?.split(' '), ['openid', 'profile', 'email']);

      // The browser's part: follow the provider's redirects (it signs rita.reviewer in) back to the UI's callback.
      let next = toProvider;
      for (let hop = 0; next.origin !== base && hop < 12; hop++) {
        const answer = await fetch(next, { redirect: 'manual', headers: { cookie: cookies.header() } });
        cookies.take(answer);
        const location = answer.headers.get('location');
        assert.ok(location, `the provider redirects (hop ${hop}: ${answer.status} ${await answer.text()})`);
        next = new URL(location, next);
      }
      assert.equal(next.pathname, '/auth/sso/callback');
      const callback = await fetch(next, { redirect: 'manual', headers: { cookie: cookies.header() } });
      cookies.take(callback);
      assert.equal(callback.status, 303, await callback.clone().text());
      const userCookie = Array.from({ length: 10 }, (_, i) => cookies.get(`user${i}`) ?? '').join('');
      const user = JSON.parse(Buffer.from(userCookie, 'base64').toString('utf8')) as { AccessToken: string; IDToken: string; Name: string };
      assert.equal(user.Name, 'rita.reviewer');

      // As the browser sends them: the tokens the UI read from its cookie, and the cookies (the session's start).
      const signedIn = { authorization: `Bearer ${user.AccessToken}`, 'authorization-extras': user.IDToken, cookie: cookies.header() };
      assert.ok(cookies.get('session_start'), 'the sign-in started a session');
      const namespaces = await fetch(`${base}/api/v1/namespaces`, { headers: signedIn });
      assert.equal(namespaces.status, 200, await namespaces.clone().text());
      const listed = await fetch(`${base}/api/v1/namespaces/default/workflows?query=`, { headers: signedIn });
      assert.equal(listed.status, 200, await listed.clone().text());

      // Writing: refused by the UI server (write actions off) before the frontend (which would refuse it too).
      const terminate = await fetch(`${base}/api/v1/namespaces/default/workflows/any-run/terminate`, {
        method: 'POST',
        headers: { ...signedIn, 'content-type': 'application/json' },
        body: JSON.stringify({ reason: 'from the UI' }),
      });
      assert.equal(terminate.status, 405);
    });
  });

  describe('without sign-in configured', () => {
    it('listens on loopback only, and will not listen elsewhere without sign-in', async () => {
      const port = await freePort();
      const running = await startUi({ TEMPORAL_UI_PORT: String(port) });
      try {
        assert.equal(running.ui.signIn, false);
        assert.equal(running.ui.url, `http://localhost:${port}`);
        assert.equal((await fetch(`http://127.0.0.1:${port}/api/v1/namespaces`)).status, 200, 'readable on loopback');
        const elsewhere = Object.values(networkInterfaces())
          .flat()
          .filter((a) => a && a.family === 'IPv4' && !a.internal)
          .map((a) => a!.address);
        for (const address of elsewhere) assert.equal(await isAccepting(address, port), false, `not on ${address}`);
      } finally {
        await running.stop();
      }
      assert.throws(
        () => temporalUiSettings(loadConfig({ TEMPORAL_UI_HOST: '0.0.0.0' }), cluster()),
        (err: Error) => err instanceof StartError && /without sign-in/.test(err.message),
      );
      assert.throws(
        () => temporalUiSettings(loadConfig({ TEMPORAL_UI_OIDC_CLIENT_ID: 'temporal-ui' }), cluster()),
        (err: Error) => err instanceof StartError && /OIDC_ISSUER/.test(err.message),
      );
    });
  });
});
