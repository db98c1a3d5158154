import { randomUUID } from 'node:crypto';
import { createServer, type Server } from 'node:http';
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
 * issuer other than its URL, it stands in for that issuer with a key nobody published.
 */
export async function startIdentityProvider(options: { issuer?: string } = {}): Promise<IdentityProvider> {
  const server: Server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  const url = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
  const issuer = options.issuer ?? url;
  const { privateKey } = await generateKeyPair('RS256', { extractable: true });
  const signingKey = { ...(await exportJWK(privateKey)), kid: randomUUID(), alg: 'RS256', use: 'sig' };
  const clientSecret = randomUUID();
  let pendingClaims: Record<string, unknown> = {};

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
    ],
    features: {
      devInteractions: { enabled: false },
      clientCredentials: { enabled: true },
      resourceIndicators: {
        enabled: true,
        defaultResource: () => LABFLOW_RESOURCE,
        useGrantedResource: () => true,
        getResourceServerInfo: (_ctx, resource) => ({
          scope: 'api',
          audience: resource,
          accessTokenFormat: 'jwt',
          accessTokenTTL: 300,
          jwt: { sign: { alg: 'RS256' } },
        }),
      },
    },
    extraTokenClaims: () => pendingClaims,
    ttl: { ClientCredentials: 300 },
  });
  server.on('request', provider.callback());

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
