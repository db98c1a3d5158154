import { CREDENTIALS_CHANNEL, LISTENER_APPLICATION_NAME, onCredentialChanges } from '../../db/credential-notices';
import { createPgListener, type PgListener } from '../../db/pg-listener';
import { createAuthenticator, type Authenticator, type CredentialResolver } from '../auth';
import type { ApiDeps } from '../deps';
import { failedKeyWatch } from './alerts';
import { DEFAULT_CREDENTIAL_SETTINGS } from './settings';

export interface ApiAuthentication {
  authenticate: Authenticator;
  /**
   * The process's one LISTEN connection, on the credentials channel from the start; `ready` once it is in place.
   * The live event streams listen on it too.
   */
  listener: PgListener;
  close(): Promise<void>;
}

/**
 * What an API process authenticates with: the API key resolver (and any others), the count of failed keys that
 * alerts IT and QA, and a listener that drops revoked keys and deactivated users from the cache at once.
 */
export function startAuthentication(
  deps: Pick<ApiDeps, 'db' | 'temporal' | 'config' | 'log'>,
  databaseUrl: string,
  resolvers: CredentialResolver[] = [],
): ApiAuthentication {
  const settings = deps.config.credentials ?? DEFAULT_CREDENTIAL_SETTINGS;
  const authenticate = createAuthenticator(deps.db, deps.config.apiKeyCacheTtlMs, {
    resolvers,
    onFailure: failedKeyWatch(deps),
    lastUsedIntervalMs: settings.lastUsedIntervalMs,
    onError: (err) => deps.log.error({ err: err instanceof Error ? err.name : String(err) }, 'could not record the last use of an API key'),
  });
  const listener = createPgListener({
    connectionString: databaseUrl,
    applicationName: LISTENER_APPLICATION_NAME,
    channels: [CREDENTIALS_CHANNEL],
    log: { warn: (obj, msg) => deps.log.warn(obj, msg), info: (obj, msg) => deps.log.info(obj, msg) },
  });
  onCredentialChanges(
    listener,
    (change) => authenticate.invalidate(change),
    () => authenticate.invalidate('all'),
  );
  return { authenticate, listener, close: () => listener.close() };
}
