import { Client } from 'pg';

export interface PgListenerOptions {
  connectionString: string;
  /** How the connection shows in pg_stat_activity. */
  applicationName: string;
  /** Channels listened on from the start; `ready` waits for them. */
  channels: string[];
  log: { warn: (obj: object, msg: string) => void; info: (obj: object, msg: string) => void };
  /** First delay before reconnecting; doubles up to 30 s. */
  retryMs?: number;
}

export interface PgListener {
  /** Resolves once the first connection listens on the initial channels. */
  ready: Promise<void>;
  /** Listens on one more channel; resolves once its LISTEN is in place (at the next connection if down now). */
  listen(channel: string): Promise<void>;
  /** Calls `handler` with each notification's payload on the channel; answers a function that stops it. */
  on(channel: string, handler: (payload: string | undefined) => void): () => void;
  /**
   * Calls `handler` after a reconnection: notifications sent while the connection was down are lost, so whoever
   * keeps state from them starts afresh.
   */
  onReset(handler: () => void): () => void;
  close(): Promise<void>;
}

const CHANNEL = /^[a-z_][a-z0-9_]*$/;

/**
 * One dedicated connection (a pooled one would lose its LISTEN when handed back) that listens on some channels,
 * hands each notification to the handlers of its channel and reconnects with back-off when the connection drops.
 * An API process holds one, whatever number of caches and streams it feeds.
 */
export function createPgListener(options: PgListenerOptions): PgListener {
  const firstRetry = options.retryMs ?? 500;
  let retry = firstRetry;
  let client: Client | undefined;
  let connected = false;
  let closed = false;
  let timer: NodeJS.Timeout | undefined;
  let connectedOnce = false;
  const channels = new Set<string>();
  const handlers = new Map<string, Set<(payload: string | undefined) => void>>();
  const resetHandlers = new Set<() => void>();
  let waiting: (() => void)[] = [];
  let markReady: () => void = () => {};
  const ready = new Promise<void>((resolve) => (markReady = resolve));

  const checked = (channel: string) => {
    // A channel name is an identifier in the LISTEN statement, never a parameter: only plain names are taken.
    if (!CHANNEL.test(channel)) throw new Error(`not a channel name: ${channel}`);
    return channel;
  };
  for (const channel of options.channels) channels.add(checked(channel));

  const schedule = () => {
    if (closed || timer) return;
    timer = setTimeout(() => {
      timer = undefined;
      void connect();
    }, retry);
    retry = Math.min(retry * 2, 30_000);
  };

  async function connect(): Promise<void> {
    const c = new Client({ connectionString: options.connectionString, application_name: options.applicationName });
    client = c;
    let failed = false;
    const lost = (err?: Error) => {
      if (failed) return;
      failed = true;
      connected = false;
      if (client === c) client = undefined;
      c.removeAllListeners('notification');
      void c.end().catch(() => {});
      if (!closed) {
        options.log.warn({ err: err?.message, listener: options.applicationName }, 'notices: connection lost, reconnecting');
        schedule();
      }
    };
    c.on('error', lost);
    c.on('end', () => lost());
    c.on('notification', (msg) => {
      for (const handler of handlers.get(msg.channel) ?? []) handler(msg.payload);
    });
    try {
      await c.connect();
      for (const channel of channels) await c.query(`listen ${channel}`);
    } catch (err) {
      lost(err as Error);
      return;
    }
    if (closed) {
      await c.end().catch(() => {});
      return;
    }
    retry = firstRetry;
    connected = true;
    if (connectedOnce) {
      options.log.info({ listener: options.applicationName }, 'notices: listening again');
      for (const handler of resetHandlers) handler();
    }
    connectedOnce = true;
    markReady();
    const woken = waiting;
    waiting = [];
    for (const wake of woken) wake();
  }

  void connect();
  return {
    ready,
    async listen(channel) {
      if (channels.has(checked(channel)) && connected) return;
      channels.add(channel);
      const c = client;
      if (connected && c) {
        try {
          await c.query(`listen ${channel}`);
          return;
        } catch {
          // The connection is going: the next one listens on every channel, this one included.
        }
      }
      await new Promise<void>((resolve) => waiting.push(resolve));
    },
    on(channel, handler) {
      let set = handlers.get(channel);
      if (!set) handlers.set(channel, (set = new Set()));
      set.add(handler);
      return () => set.delete(handler);
    },
    onReset(handler) {
      resetHandlers.add(handler);
      return () => resetHandlers.delete(handler);
    },
    async close() {
      closed = true;
      if (timer) clearTimeout(timer);
      const woken = waiting;
      waiting = [];
      for (const wake of woken) wake();
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
