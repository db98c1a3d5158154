import { createRemoteJWKSet, errors, type JWTVerifyGetKey } from 'jose';
import type { OidcSettings } from './oidc-settings';
import { IdentityProviderUnavailable } from './oidc-errors';

/**
 * The provider's signing keys, found through its discovery document (read once, again only after a failure) and
 * fetched from its jwks_uri by jose's remote key set: cached, and fetched anew when a token names a key the cache
 * does not hold (the provider rotated its keys), at most once per cooldown. Failing to reach the provider raises
 * IdentityProviderUnavailable; a key the set does not hold stays jose's JWKSNoMatchingKey.
 */
/** The key set could not be fetched or read (network, timeout, not 200, not a JWKS), as opposed to a token it refuses. */
function fetchFailure(err: unknown): boolean {
  if (!(err instanceof errors.JOSEError)) return true;
  return err instanceof errors.JWKSTimeout || err instanceof errors.JWKSInvalid || err.code === 'ERR_JOSE_GENERIC';
}

export function providerKeys(settings: Pick<OidcSettings, 'issuer' | 'httpTimeoutMs'>): JWTVerifyGetKey {
  let keySet: Promise<JWTVerifyGetKey> | undefined;

  async function discover(): Promise<JWTVerifyGetKey> {
    const url = `${settings.issuer.replace(/\/$/, '')}/.well-known/openid-configuration`;
    let metadata: { issuer?: unknown; jwks_uri?: unknown };
    try {
      const response = await fetch(url, { signal: AbortSignal.timeout(settings.httpTimeoutMs), redirect: 'error' });
      if (response.status !== 200) throw new IdentityProviderUnavailable(`its discovery document answered ${response.status}`);
      metadata = (await response.json()) as typeof metadata;
    } catch (err) {
      if (err instanceof IdentityProviderUnavailable) throw err;
      throw new IdentityProviderUnavailable('its discovery document could not be read');
    }
    if (metadata.issuer !== settings.issuer) {
      throw new IdentityProviderUnavailable('its discovery document names another issuer than OIDC_ISSUER');
    }
    if (typeof metadata.jwks_uri !== 'string') throw new IdentityProviderUnavailable('its discovery document has no jwks_uri');
    return createRemoteJWKSet(new URL(metadata.jwks_uri), { timeoutDuration: settings.httpTimeoutMs });
  }

  return async (header, token) => {
    keySet ??= discover();
    let jwks: JWTVerifyGetKey;
    try {
      jwks = await keySet;
    } catch (err) {
      keySet = undefined;
      throw err;
    }
    try {
      return await jwks(header, token);
    } catch (err) {
      if (!fetchFailure(err)) throw err;
      throw new IdentityProviderUnavailable(err instanceof errors.JWKSTimeout ? 'its key set did not answer in time' : 'its key set could not be read');
    }
  };
}
