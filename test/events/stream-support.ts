import { createServer, type RequestListener, type Server } from 'node:http';
import { EventSource } from 'eventsource';
import { databaseUrlOf } from '../../activities/backups';
import { DOMAIN_EVENT_TYPES } from '../../common/domain-events';
import { createApp } from '../../api/app';
import type { CredentialResolver } from '../../api/auth';
import { startAuthentication } from '../../api/credentials/authentication';
import type { ApiConfig } from '../../api/deps';
import { createEventStreams, type EventStreams, type StreamSettings } from '../../api/live/event-streams';
import { createLogger } from '../../platform/logger';
import { testApiConfig } from '../helpers/platform';
import { testEnv } from '../setup/env';

export interface ApiProcess {
  baseUrl: string;
  port: number;
  streams: EventStreams;
  stop(): Promise<void>;
}

/**
 * One API process as api/server.ts wires it: its own key cache, its own LISTEN connection shared by the credential
 * notices and its event streams, its own HTTP server. `port` 0 takes a free one; a restart passes the old one.
 * `resolvers` are credential kinds beside API keys (single sign-on).
 */
export async function startApiProcess(
  taskQueue: string,
  streams: Partial<StreamSettings>,
  port = 0,
  resolvers: CredentialResolver[] = [],
): Promise<ApiProcess> {
  const env = testEnv();
  const log = createLogger({ LOG_LEVEL: 'silent', LOG_PRETTY: false }, 'test');
  const config: ApiConfig = testApiConfig(taskQueue, {
    streams: { heartbeatMs: 60_000, maxPerUser: 5, maxPerProcess: 100, maxBufferedBytes: 1_048_576, ...streams },
  });
  const auth = startAuthentication({ db: env.appDb, temporal: env.client, config, log }, databaseUrlOf(env.appDb), resolvers);
  await auth.listener.ready;
  const hub = createEventStreams({ db: env.appDb, listener: auth.listener, settings: config.streams, log, recheck: auth.authenticate.recheck });
  await hub.ready;
  const app = createApp({ db: env.appDb, temporal: env.client, config, log, authenticate: auth.authenticate, streams: hub });
  const server = await listen(app.callback(), port);
  const bound = (server.address() as { port: number }).port;
  return {
    baseUrl: `http://127.0.0.1:${bound}`,
    port: bound,
    streams: hub,
    async stop() {
      // As api/server.ts stops: each stream ends with its reason, its connection is then idle and closed.
      hub.close();
      await new Promise<void>((resolve) => {
        const sweep = setInterval(() => server.closeIdleConnections(), 50);
        const cut = setTimeout(() => server.closeAllConnections(), 10_000);
        server.close(() => (clearInterval(sweep), clearTimeout(cut), resolve()));
      });
      await auth.close();
    },
  };
}

/** Listens on the port; a port just given up by a stopped process may take a moment to be free again. */
async function listen(handler: RequestListener, port: number): Promise<Server> {
  for (let attempt = 0; ; attempt++) {
    try {
      return await new Promise<Server>((resolve, reject) => {
        const s = createServer(handler);
        s.once('error', reject);
        s.listen(port, '127.0.0.1', () => resolve(s));
      });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EADDRINUSE' || attempt > 50) throw err;
      await new Promise((r) => setTimeout(r, 200));
    }
  }
}

export interface Received {
  id: string;
  type: string;
  data: Record<string, unknown>;
}

/** An answer that was no stream (a limit, a refused credential): what the client was told. */
export interface Refusal {
  status: number;
  headers: Headers;
  body: Record<string, unknown>;
}

export interface SubscribeOptions {
  /**
   * The client reads nothing of its first connection until this settles, as a client that falls behind (a frozen
   * tab, a slow network): what the server sends piles up in the sockets' buffers, then in the server's.
   */
  stallUntil?: Promise<void>;
}

/**
 * A real EventSource client (the `eventsource` package, as a browser's) with the key (or access token) as a bearer
 * token. It reconnects by itself, sending Last-Event-ID, as a browser does, and gives up on an answer that is not a
 * stream; `events` holds what it received, in order, `refusals` the answers that were not streams, `errors` the
 * status of each error it reported (undefined for a lost connection).
 */
export function subscribe(baseUrl: string, key: string, query = '', options: SubscribeOptions = {}) {
  const events: Received[] = [];
  const ended: string[] = [];
  const refusals: Refusal[] = [];
  const errors: (number | undefined)[] = [];
  let opened = 0;
  let connections = 0;
  const source = new EventSource(`${baseUrl}/api/v1/stream${query}`, {
    fetch: async (input, init) => {
      const res = await fetch(input, { ...init, headers: { ...init?.headers, authorization: `Bearer ${key}` } });
      connections++;
      if (res.status !== 200) {
        refusals.push({ status: res.status, headers: res.headers, body: (await res.clone().json()) as Record<string, unknown> });
        return res;
      }
      if (connections === 1 && options.stallUntil && res.body) return new Response(stalled(res.body, options.stallUntil), res);
      return res;
    },
  });
  const types = DOMAIN_EVENT_TYPES;
  for (const type of types) {
    source.addEventListener(type, (e) => events.push({ id: e.lastEventId, type, data: JSON.parse(e.data) }));
  }
  source.addEventListener('stream-ended', (e) => ended.push(JSON.parse(e.data).reason));
  source.addEventListener('open', () => opened++);
  source.addEventListener('error', (e) => errors.push(e.code));
  return {
    source,
    events,
    ended,
    refusals,
    errors,
    opens: () => opened,
    close: () => source.close(),
  };
}

/** The body, not read at all until `until` settles, then passed on as it comes. */
function stalled(body: ReadableStream<Uint8Array>, until: Promise<void>): ReadableStream<Uint8Array> {
  const reader = body.getReader();
  return new ReadableStream<Uint8Array>(
    {
      async pull(controller) {
        await until;
        const { value, done } = await reader.read();
        if (done) controller.close();
        else controller.enqueue(value);
      },
      cancel: (reason) => reader.cancel(reason),
    },
    { highWaterMark: 0 },
  );
}

/** A plain reader of the raw text of a stream, for what EventSource hides (comments, headers, the end). */
export async function rawStream(baseUrl: string, key: string, headers: Record<string, string> = {}) {
  const controller = new AbortController();
  const res = await fetch(`${baseUrl}/api/v1/stream`, {
    headers: { authorization: `Bearer ${key}`, ...headers },
    signal: controller.signal,
  });
  let text = '';
  let done = false;
  const reading = (async () => {
    if (!res.body) return;
    const decoder = new TextDecoder();
    try {
      for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) text += decoder.decode(chunk, { stream: true });
    } catch {
      // aborted by close()
    }
    done = true;
  })();
  return {
    res,
    text: () => text,
    done: () => done,
    async close() {
      controller.abort();
      await reading;
    },
  };
}
