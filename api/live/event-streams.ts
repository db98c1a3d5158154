import { PassThrough } from 'node:stream';
import type { Context } from 'koa';
import type { Actor } from '../../common/roles';
import { onCredentialChanges, type CredentialChange } from '../../db/credential-notices';
import { credentialExpiry } from '../auth';
import { DOMAIN_EVENTS_CHANNEL, listDomainEvents, newestDomainEventSeq } from '../../db/domain-events';
import { API_KEY_PATTERN } from '../../db/identity';
import type { Db } from '../../db/knex';
import type { PgListener } from '../../db/pg-listener';
import type { Logger } from '../../platform/logger';
import { Problem, problems } from '../problem';
import { openEventStream, sseComment, sseEvent, sseRetry } from './sse';
import { judgeable, mayReceive, type JudgedEvent } from './visibility';

/** STREAM_*: heartbeats and the limits that keep one process's streams in bounds. */
export interface StreamSettings {
  heartbeatMs: number;
  /** Streams one user may have open on one API process. */
  maxPerUser: number;
  /** Streams one API process holds. */
  maxPerProcess: number;
  /** What may wait for a client that does not read before its stream is cut off. */
  maxBufferedBytes: number;
}

export const DEFAULT_STREAM_SETTINGS: StreamSettings = {
  heartbeatMs: 15_000,
  maxPerUser: 5,
  maxPerProcess: 1000,
  maxBufferedBytes: 1_048_576,
};

/** Why the server ended a stream, sent as the data of a last `stream-ended` event. */
export type StreamEndReason = 'fell-behind' | 'credentials-refused' | 'shutting-down' | 'interrupted';

const END_DETAIL: Record<StreamEndReason, string> = {
  'fell-behind': 'the client did not read its events fast enough; reconnect and the stream resumes after the last event received',
  'credentials-refused': 'the credential this stream was opened with is refused now (revoked, rotated, expired, or its user deactivated)',
  'shutting-down': 'this API process is stopping; reconnect and another resumes after the last event received',
  interrupted: 'the event history could not be read; reconnect and the stream resumes after the last event received',
};

export interface EventStreamRequest {
  /** The last event the client holds (Last-Event-ID): the stream replays what came after it first. */
  after?: number;
  types?: string[];
}

export interface EventStreams {
  /** Resolves once this process listens for events and knows the newest. */
  ready: Promise<void>;
  /** Answers the request with a stream of the events the actor may see; 429 or 503 past the limits. */
  open(ctx: Context, actor: Actor, request: EventStreamRequest): Promise<void>;
  /** The streams open now. */
  size(): number;
  /** Ends every stream ('shutting-down'); the listener stays its owner's to close. */
  close(): void;
}

export interface EventStreamDeps {
  db: Db;
  /** The process's one LISTEN connection (api/credentials/authentication.ts). */
  listener: PgListener;
  settings?: StreamSettings;
  log: Logger;
  /** The request's credential resolved again: its actor now, undefined when it is refused now. */
  recheck: (ctx: Context) => Promise<Actor | undefined>;
}

interface Stream {
  actor: Actor;
  ctx: Context;
  keyPrefix: string | null;
  types: Set<string> | null;
  /** The last event judged for this stream (sent, or not the reader's to see). */
  cursor: number;
  /** False while the stream replays from the history; then the process's fan-out feeds it. */
  live: boolean;
  out: PassThrough;
  heartbeat?: NodeJS.Timeout;
  /** Fires when the credential stops being accepted (an access token's or a key's expiry). */
  expiry?: NodeJS.Timeout;
  ended: boolean;
  rechecking: boolean;
}

const PAGE = 500;
/** How long a client waits before reconnecting (the `retry` field). */
const RECONNECT_MS = 2000;
/** How long a stream the server ended may take to hand the client what is still buffered before its connection is cut. */
const END_GRACE_MS = 30_000;
/** The longest a Node timer can wait; an expiry further out is left to the heartbeats' checks. */
const MAX_TIMER_MS = 2 ** 31 - 1;

/**
 * The process's live event streams. One LISTEN connection hears each domain event's commit; the process then reads
 * the new events once (seq after the newest it has read: seq order is commit order, so none is skipped) and hands
 * each to every live stream whose reader may see it. A stream that resumes (Last-Event-ID) first replays the
 * history from the table, then joins the fan-out exactly where its replay ended, so no event comes twice or not at
 * all across reconnects, API restarts and other processes.
 */
export function createEventStreams(deps: EventStreamDeps): EventStreams {
  const settings = deps.settings ?? DEFAULT_STREAM_SETTINGS;
  const streams = new Set<Stream>();
  /** The newest event handed to the live streams. */
  let head = 0;
  let started = false;
  let closing = false;
  let pulling: Promise<void> | null = null;
  let again = false;
  let retryTimer: NodeJS.Timeout | undefined;

  const buffered = (s: Stream) => s.out.writableLength + s.out.readableLength + s.ctx.res.writableLength;

  /** Writes to the stream; a live event that leaves more than the limit waiting for the client cuts it off. */
  function send(s: Stream, text: string, paced = false): void {
    if (s.ended) return;
    s.out.write(text);
    if (!paced && buffered(s) > settings.maxBufferedBytes) end(s, 'fell-behind');
  }

  function end(s: Stream, reason?: StreamEndReason): void {
    if (s.ended) return;
    s.ended = true;
    streams.delete(s);
    clearInterval(s.heartbeat);
    clearTimeout(s.expiry);
    if (reason) {
      s.out.write(sseEvent({ event: 'stream-ended', data: JSON.stringify({ reason, detail: END_DETAIL[reason] }) }));
      // A client that reads nothing (the one that fell behind) would hold its buffers, and its socket, for ever.
      const cut = setTimeout(() => s.ctx.res.destroy(), END_GRACE_MS).unref();
      s.ctx.res.once('close', () => clearTimeout(cut));
    }
    s.out.end();
  }

  /** Checks the credential again the moment it stops being accepted, rather than at the next heartbeat. */
  function watchExpiry(s: Stream): void {
    clearTimeout(s.expiry);
    const at = credentialExpiry(s.ctx);
    if (s.ended || at === undefined) return;
    // Still accepted past its expiry (clocks differ): asked again a second later, not in a tight loop.
    const wait = at > Date.now() ? at - Date.now() : 1000;
    if (wait <= MAX_TIMER_MS) s.expiry = setTimeout(() => void recheck(s), wait);
  }

  /** `paced`: the replay, which waits for the client to drain what it wrote, so a page of history is no falling behind. */
  function deliver(s: Stream, { event, ...facts }: JudgedEvent, paced = false): void {
    if (s.ended || event.seq <= s.cursor) return;
    s.cursor = event.seq;
    if (s.types && !s.types.has(event.type)) return;
    if (!mayReceive(s.actor, { event, ...facts })) return;
    send(s, sseEvent({ id: String(event.seq), event: event.type, data: JSON.stringify(event) }), paced);
  }

  /** Reads the events after `head` and fans them out; one read at a time, again if a notice came meanwhile. */
  function pull(): void {
    if (!started || closing) return;
    if (pulling) {
      again = true;
      return;
    }
    pulling = (async () => {
      do {
        again = false;
        for (;;) {
          const page = await listDomainEvents(deps.db, { after: head, limit: PAGE });
          for (const judged of await judgeable(deps.db, page)) {
            head = judged.event.seq;
            for (const s of streams) if (s.live) deliver(s, judged);
          }
          if (page.length < PAGE) break;
        }
      } while (again && !closing);
    })()
      .catch((err: unknown) => {
        deps.log.warn({ err: err instanceof Error ? err.message : String(err) }, 'event streams: could not read new events; retrying');
        retryTimer ??= setTimeout(() => ((retryTimer = undefined), pull()), 1000);
      })
      .finally(() => {
        pulling = null;
        if (again) pull();
      });
  }

  /** Resolves once the client took what waited for it (or went away). */
  const drained = (s: Stream) =>
    new Promise<void>((resolve) => {
      if (!s.out.writableNeedDrain || s.ended) return resolve();
      const done = () => {
        s.out.off('drain', done);
        s.ctx.res.off('close', done);
        resolve();
      };
      s.out.on('drain', done);
      s.ctx.res.on('close', done);
    });

  /** The history after the client's last event, page by page at the client's pace, then the fan-out. */
  async function replay(s: Stream): Promise<void> {
    while (!s.ended) {
      // Every event up to the head read before the query is committed, so the query sees each of them.
      const reached = head;
      const types = s.types ? [...s.types] : undefined;
      const page = await listDomainEvents(deps.db, { after: s.cursor, limit: PAGE, types });
      for (const judged of await judgeable(deps.db, page)) {
        deliver(s, judged, true);
        await drained(s);
      }
      if (page.length === PAGE) continue;
      s.cursor = Math.max(s.cursor, reached);
      if (s.cursor >= head) {
        s.live = true;
        return;
      }
    }
  }

  const concerns = (s: Stream, change: CredentialChange) =>
    'userId' in change ? s.actor.userId === change.userId : s.keyPrefix === change.keyPrefix;

  /** Resolves the stream's credential again: ends the stream when it is refused, takes changed roles when not. */
  async function recheck(s: Stream): Promise<void> {
    if (s.rechecking || s.ended) return;
    s.rechecking = true;
    try {
      // Every handler of the notice runs first, the authenticator's cache invalidation among them.
      await new Promise(setImmediate);
      const actor = await deps.recheck(s.ctx);
      if (!actor) end(s, 'credentials-refused');
      else s.actor = actor;
    } catch (err) {
      // A database that cannot answer now is no reason to cut readers off; the next heartbeat asks again.
      deps.log.warn({ err: err instanceof Error ? err.name : String(err) }, 'event streams: could not check a credential again');
    } finally {
      s.rechecking = false;
      watchExpiry(s);
    }
  }

  const stopEvents = deps.listener.on(DOMAIN_EVENTS_CHANNEL, () => pull());
  const stopResets = deps.listener.onReset(() => pull());
  const stopCredentials = onCredentialChanges(
    deps.listener,
    (change) => {
      for (const s of streams) if (concerns(s, change)) void recheck(s);
    },
    () => {
      for (const s of streams) void recheck(s);
    },
  );

  const ready = (async () => {
    for (let delay = 500; !closing; delay = Math.min(delay * 2, 30_000)) {
      try {
        await deps.listener.listen(DOMAIN_EVENTS_CHANNEL);
        head = await newestDomainEventSeq(deps.db);
        started = true;
        pull();
        return;
      } catch (err) {
        deps.log.warn({ err: err instanceof Error ? err.message : String(err) }, 'event streams: not started yet; retrying');
        await new Promise((resolve) => setTimeout(resolve, delay));
      }
    }
  })();

  return {
    ready,
    size: () => streams.size,
    async open(ctx, actor, request) {
      if (!started || closing) throw problems.unavailable('live updates are not available on this API process right now');
      if (streams.size >= settings.maxPerProcess) {
        throw new Problem(
          503,
          'stream-capacity',
          'No room for another event stream',
          `this API process holds its limit of ${settings.maxPerProcess} event streams; try again shortly (another process may have room)`,
          { limit: settings.maxPerProcess },
          { 'Retry-After': '5' },
        );
      }
      const mine = [...streams].filter((s) => s.actor.userId === actor.userId).length;
      if (mine >= settings.maxPerUser) {
        throw new Problem(
          429,
          'too-many-streams',
          'Too many event streams',
          `a user may have ${settings.maxPerUser} event streams open at once on one API process; close one first`,
          { limit: settings.maxPerUser },
          { 'Retry-After': '5' },
        );
      }
      // An ID beyond the newest event (another database's, a client's invention) resumes from the newest.
      const after = request.after === undefined ? undefined : Math.min(request.after, await newestDomainEventSeq(deps.db));
      const token = /^Bearer\s+(\S+)$/i.exec(ctx.get('authorization'))?.[1] ?? '';
      const s: Stream = {
        actor,
        ctx,
        keyPrefix: API_KEY_PATTERN.exec(token)?.[1] ?? null,
        types: request.types?.length ? new Set(request.types) : null,
        cursor: after ?? head,
        live: after === undefined,
        out: new PassThrough(),
        ended: false,
        rechecking: false,
      };
      streams.add(s);
      openEventStream(ctx);
      ctx.body = s.out;
      s.out.write(sseRetry(RECONNECT_MS) + sseComment('connected'));
      // The client went away (or the stream was ended): nothing more is written, the stream is forgotten.
      ctx.res.once('close', () => end(s));
      s.heartbeat = setInterval(() => {
        send(s, sseComment('heartbeat'));
        void recheck(s);
      }, settings.heartbeatMs);
      watchExpiry(s);
      if (!s.live) {
        replay(s).catch((err: unknown) => {
          deps.log.warn({ err: err instanceof Error ? err.message : String(err) }, 'event streams: replay failed');
          end(s, 'interrupted');
        });
      }
    },
    close() {
      closing = true;
      clearTimeout(retryTimer);
      stopEvents();
      stopResets();
      stopCredentials();
      for (const s of [...streams]) end(s, 'shutting-down');
    },
  };
}
