import type { Knex } from 'knex';
import { Client } from 'pg';

/** How the listening connections show in pg_stat_activity. */
export const LISTENER_APPLICATION_NAME = 'labflow-credential-listener';

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

export interface CredentialListenerOptions {
  connectionString: string;
  onChange: (change: CredentialChange) => void;
  /** Called after a reconnection: notices sent while the connection was down are lost, so caches start afresh. */
  onReset: () => void;
  log: { warn: (obj: object, msg: string) => void; info: (obj: object, msg: string) => void };
  /** First delay before reconnecting; doubles up to 30 s. */
  retryMs?: number;
}

export interface CredentialListener {
  /** Resolves once the first LISTEN is in place. */
  ready: Promise<void>;
  close(): Promise<void>;
}

/**
 * A dedicated connection (a pooled one would lose its LISTEN when handed back) that listens on the credentials
 * channel and reconnects with back-off when the connection drops.
 */
export function listenForCredentialChanges(options: CredentialListenerOptions): CredentialListener {
  const firstRetry = options.retryMs ?? 500;
  let retry = firstRetry;
  let client: Client | undefined;
  let closed = false;
  let timer: NodeJS.Timeout | undefined;
  let connectedOnce = false;
  let markReady: () => void = () => {};
  const ready = new Promise<void>((resolve) => (markReady = resolve));

  const schedule = () => {
    if (closed || timer) return;
    timer = setTimeout(() => {
      timer = undefined;
      void connect();
    }, retry);
    retry = Math.min(retry * 2, 30_000);
  };

  async function connect(): Promise<void> {
    const c = new Client({ connectionString: options.connectionString, application_name: LISTENER_APPLICATION_NAME });
    client = c;
    let failed = false;
    const lost = (err?: Error) => {
      if (failed) return;
      failed = true;
      if (client === c) client = undefined;
      c.removeAllListeners('notification');
      void c.end().catch(() => {});
      if (!closed) {
        options.log.warn({ err: err?.message }, 'credential notices: connection lost, reconnecting');
        schedule();
      }
    };
    c.on('error', lost);
    c.on('end', () => lost());
    c.on('notification', (msg) => {
      if (msg.channel !== CREDENTIALS_CHANNEL) return;
      const change = parseCredentialChange(msg.payload);
      if (change) options.onChange(change);
    });
    try {
      await c.connect();
      await c.query(`listen ${CREDENTIALS_CHANNEL}`);
    } catch (err) {
      lost(err as Error);
      return;
    }
    if (closed) {
      await c.end().catch(() => {});
      return;
    }
    retry = firstRetry;
    if (connectedOnce) {
      options.onReset();
      options.log.info({}, 'credential notices: listening again');
    }
    connectedOnce = true;
    markReady();
  }

  void connect();
  return {
    ready,
    async close() {
      closed = true;
      if (timer) clearTimeout(timer);
      const c = client;
      client = undefined;
      if (c) {
        c.removeAllListeners();
        c.on('error', () => {});
        await c.end().catch(() => {});
      }
    },
  };
}
