import { randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { exportJWK, generateKeyPair } from 'jose';
import Provider from 'oidc-provider';

/** The resource (and so the audience) labflow's tokens are issued for; any other resource is another API. */
export const LABFLOW_RESOURCE = 'https://labflow.test/api';
export const OTHER_RESOURCE = 'https://other-app.test/api';

export interface TokenRequest {
  /** Claims the token carries beside the provider's own (preferred_username, groups, nbf…). */
  claims?: Record<string, unknown>;
  resource?: string;
}

/**
 * A web application that signs people in with the authorization code flow (the Temporal Web UI server). Whoever
 * the provider asks to sign in is signed in at once as `signInAs`, and consents to what was asked: the browser
 * part of a sign-in, done by the provider itself.
 */
export interface WebClient {
  clientId: string;
  clientSecret: string;
  redirectUri: string;
  signInAs: string;
}

export interface IdentityProvider {
  /** Where it listens. */
  url: string;
  /** The issuer its tokens and discovery document name (its own URL unless told otherwise). */
  issuer: string;
  /** A JWT access token from the provider's token endpoint (client credentials grant with a resource indicator). */
  token(request?: TokenRequest): Promise<string>;
  close(): Promise<void>;
}

/**
 * A real OpenID provider (oidc-provider) on a free port, with its own freshly generated signing key. Given an
 * issuer other than its URL, it stands in for that issuer with a key nobody published. Its access tokens last
 * `accessTokenTtlSeconds` (5 minutes unless told).
 */
export async function startIdentityProvider(
  options: { issuer?: string; webClient?: WebClient; accessTokenTtlSeconds?: number } = {},
): Promise<IdentityProvider> {
  const accessTokenTtl = options.accessTokenTtlSeconds ?? 300;
  const server: Server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  const url = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
  const issuer = options.issuer ?? url;
  const { privateKey } = await generateKeyPair('RS256', { extractable: true });
  const signingKey = { ...(await exportJWK(privateKey)), kid: randomUUID(), alg: 'RS256', use: 'sig' };
  const clientSecret = randomUUID();
  let pendingClaims: Record<string, unknown> = {};

  const { webClient } = options;
  const provider = new Provider(issuer, {
    jwks: { keys: [signingKey] },
    clients: [
      {
        client_id: 'labflow-tests',
        client_secret: clientSecret,
        grant_types: ['client_credentials'],
        redirect_uris: [],
        response_types: [],
      },
      ...(webClient
        ? [
            {
              client_id: webClient.clientId,
              client_secret: webClient.clientSecret,
              grant_types: ['authorization_code'],
              redirect_uris: [webClient.redirectUri],
              response_types: ['code' as const],
            },
          ]
        : []),
    ],
    findAccount: (_ctx, sub) => ({ accountId: sub, claims: () => ({ sub, name: sub, email: `${sub}@lab.example` }) }),
    claims: { openid: ['sub'], profile: ['name'], email: ['email'] },
    // The ID token carries the profile claims too, as most providers' do (the Web UI shows the name from it).
    conformIdTokenClaims: false,
    features: {
      devInteractions: { enabled: false },
      clientCredentials: { enabled: true },
      resourceIndicators: {
        enabled: true,
        // The API's tokens are for labflow's resource; a web client's sign-in asks for no resource.
        defaultResource: (_ctx, client) => (client?.clientId === 'labflow-tests' ? LABFLOW_RESOURCE : undefined),
        useGrantedResource: () => true,
        getResourceServerInfo: (_ctx, resource) => ({
          scope: 'api',
          audience: resource,
          accessTokenFormat: 'jwt',
          accessTokenTTL: accessTokenTtl,
          jwt: { sign: { alg: 'RS256' } },
        }),
      },
    },
    extraTokenClaims: () => pendingClaims,
    ttl: { ClientCredentials: accessTokenTtl },
  });
  const callback = provider.callback();
  server.on('request', (req, res) => {
    if (webClient && req.url?.startsWith('/interaction/')) {
      void signIn(provider, webClient.signInAs, req, res).catch((err: Error) => {
        res.statusCode = 500;
        res.end(err.message);
      });
      return;
    }
    void callback(req, res);
  });

  return {
    url,
    issuer,
    async token({ claims = {}, resource = LABFLOW_RESOURCE } = {}) {
      pendingClaims = claims;
      const res = await fetch(`${url}/token`, {
        method: 'POST',
        headers: {
          authorization: `Basic ${Buffer.from(`labflow-tests:${clientSecret}`).toString('base64')}`,
          'content-type': 'application/x-www-form-urlencoded',
        },
        body: new URLSearchParams({ grant_type: 'client_credentials', scope: 'api', resource }),
      });
      const body = (await res.json()) as { access_token?: string; error?: string; error_description?: string };
      if (!res.ok || !body.access_token) throw new Error(`token request failed: ${res.status} ${JSON.stringify(body)}`);
      return body.access_token;
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

/** The provider's sign-in and consent prompts, answered for `accountId` with everything the client asked for. */
async function signIn(provider: Provider, accountId: string, req: IncomingMessage, res: ServerResponse): Promise<void> {
  const { prompt, params } = await provider.interactionDetails(req, res);
  if (prompt.name === 'login') {
    await provider.interactionFinished(req, res, { login: { accountId } }, { mergeWithLastSubmission: false });
    return;
  }
  const grant = new provider.Grant({ accountId, clientId: String(params.client_id) });
  grant.addOIDCScope(String(params.scope));
  await provider.interactionFinished(req, res, { consent: { grantId: await grant.save() } }, { mergeWithLastSubmission: true });
}
