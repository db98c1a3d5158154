import type { Knex } from 'knex';
import type { PgListener } from './pg-listener';

/** How an API process's listening connection (credentials, domain events) shows in pg_stat_activity. */
export const LISTENER_APPLICATION_NAME = 'labflow-api-listener';

/** The PostgreSQL channel on which every API process hears that a user's or a key's credentials changed. */
export const CREDENTIALS_CHANNEL = 'labflow_credentials';

export type CredentialChange = { userId: string } | { keyPrefix: string };

/** Tells every API process, once the caller's transaction commits, to forget what it remembers of the credential. */
export async function notifyCredentialChange(trx: Knex | Knex.Transaction, change: CredentialChange): Promise<void> {
  await trx.raw('select pg_notify(?, ?)', [CREDENTIALS_CHANNEL, JSON.stringify(change)]);
}

export function parseCredentialChange(payload: string | undefined): CredentialChange | null {
  try {
    const value: unknown = JSON.parse(payload ?? '');
    if (value && typeof value === 'object') {
      const { userId, keyPrefix } = value as Record<string, unknown>;
      if (typeof userId === 'string') return { userId };
      if (typeof keyPrefix === 'string') return { keyPrefix };
    }
  } catch {
    // not JSON: ignored below
  }
  return null;
}

/** Hands every credential change heard on the listener to `onChange`, and a reconnection to `onReset`. */
export function onCredentialChanges(
  listener: PgListener,
  onChange: (change: CredentialChange) => void,
  /** Called after a reconnection: notices sent while the connection was down are lost, so caches start afresh. */
  onReset: () => void,
): () => void {
  const stopChanges = listener.on(CREDENTIALS_CHANNEL, (payload) => {
    const change = parseCredentialChange(payload);
    if (change) onChange(change);
  });
  const stopResets = listener.onReset(onReset);
  return () => (stopChanges(), stopResets());
}
