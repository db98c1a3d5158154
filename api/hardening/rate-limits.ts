import { createHash } from 'node:crypto';
import type { Context, Next } from 'koa';
import { RateLimiterMemory, RateLimiterPostgres, RateLimiterRes } from 'rate-limiter-flexible';
import type { Db } from '../../db/knex';
import { Problem } from '../problem';

/** RATE_LIMIT_*: requests per window per API key and per client IP, the stricter signing budget, concurrency. */
export interface RateLimitSettings {
  windowMs: number;
  /** Requests per window for one API key (or bearer token). */
  points: number;
  /** Requests per window from one client IP, whatever key it sends (several people may share an address). */
  ipPoints: number;
  /** Requests one API key may have in progress at once, per API process. */
  concurrent: number;
  /** Routes that check a password or open a session: attempts per window per key, and per client IP. */
  signingWindowMs: number;
  signingPoints: number;
  /** Per client IP: a lab's people often share one address (a proxy, NAT), so it is larger than one key's. */
  signingIpPoints: number;
  /** Prefix of the counters' keys in PostgreSQL; tests give each app its own so counts never cross. */
  keyPrefix?: string;
}

interface Policy {
  name: string;
  limiter: RateLimiterPostgres;
  points: number;
  windowSeconds: number;
}

const TABLE = 'rate_limits';
/** Paths no rate limit applies to (the probes and metrics); the OpenAPI document names 429 on every other. */
export const EXEMPT = new Set(['/healthz', '/readyz', '/metrics']);

/** What a request is counted as: a hash of its bearer credential (never the credential), and its IP. */
export function subjectOf(ctx: Context): string | null {
  const match = /^Bearer\s+(\S+)$/i.exec(ctx.get('authorization'));
  return match ? createHash('sha256').update(match[1]).digest('base64url').slice(0, 32) : null;
}

/**
 * One counter per key and window in PostgreSQL, shared by every API process. A key that has used up its window
 * is then refused from memory until the window ends (no round trip for a flood), and should PostgreSQL fail the
 * process counts alone in memory rather than refuse everyone or let everyone through.
 */
function policy(db: Db, name: string, points: number, windowMs: number, prefix: string): Policy {
  const windowSeconds = Math.max(1, Math.ceil(windowMs / 1000));
  const limiter = new RateLimiterPostgres({
    storeClient: db,
    storeType: 'knex',
    tableName: TABLE,
    tableCreated: true,
    // One sweeper per process is enough: it deletes every counter of the table an hour past its window.
    clearExpiredByTimeout: name === 'ip',
    keyPrefix: `${prefix}:${name}`,
    points,
    duration: windowSeconds,
    inMemoryBlockOnConsumed: points,
    insuranceLimiter: new RateLimiterMemory({ keyPrefix: `${prefix}:${name}`, points, duration: windowSeconds }),
  });
  return { name, limiter, points, windowSeconds };
}

type Outcome = { policy: Policy; res: RateLimiterRes; refused: boolean };

/** What this process last heard from PostgreSQL of one counter, less what it has sent since without an answer. */
interface Estimate {
  remaining: number;
  resetAt: number;
  pending: number;
}

/**
 * Counts every request in PostgreSQL, but waits for the count only near the limit. While this process's latest
 * answer for the counter leaves more than a fifth of the window's points (less what it has sent since), the request
 * goes on at once and the count is written beside it; nearer the limit, or for a counter it has not heard of in
 * this window, the request waits for PostgreSQL's answer, so the refusal itself is exact. Other processes' requests
 * since that answer may carry the window past its limit by at most what they let through in one round trip.
 */
function countAhead(): (p: Policy, key: string) => Promise<Outcome> {
  const estimates = new Map<string, Estimate>();
  const learn = (id: string, res: RateLimiterRes) => {
    const e = estimates.get(id);
    const at = { remaining: res.remainingPoints, resetAt: Date.now() + res.msBeforeNext };
    if (e) Object.assign(e, at, { pending: e.pending - 1 });
    else estimates.set(id, { ...at, pending: 0 });
    if (estimates.size > 50_000) estimates.clear();
  };
  return async (p, key) => {
    const id = `${p.name}:${key}`;
    const e = estimates.get(id);
    const now = Date.now();
    if (e && e.resetAt > now && e.remaining - e.pending > Math.max(2, p.points / 5)) {
      e.pending++;
      const left = e.remaining - e.pending;
      consume(p, key).then(
        (o) => learn(id, o.res),
        () => e.pending--,
      );
      return { policy: p, res: new RateLimiterRes(left, e.resetAt - now, p.points - left), refused: false };
    }
    if (e) e.pending++;
    const outcome = await consume(p, key);
    if (!e) estimates.set(id, { remaining: 0, resetAt: 0, pending: 1 });
    learn(id, outcome.res);
    return outcome;
  };
}

async function consume(p: Policy, key: string): Promise<Outcome> {
  try {
    return { policy: p, res: await p.limiter.consume(key), refused: false };
  } catch (err) {
    if (err instanceof RateLimiterRes) return { policy: p, res: err, refused: true };
    throw err;
  }
}

const DESCRIBE: Record<string, string> = {
  key: 'per API key',
  ip: 'per client IP',
  'signing-key': 'for password checks and sign-ins per API key',
  'signing-ip': 'for password checks and sign-ins per client IP',
};

/**
 * The IETF draft's fields (draft-ietf-httpapi-ratelimit-headers-07): RateLimit-Limit, RateLimit-Remaining and
 * RateLimit-Reset (seconds) of the policy closest to refusing, and RateLimit-Policy (`<limit>;w=<seconds>`).
 */
function setHeaders(ctx: Context, outcomes: Outcome[]): Outcome {
  const tightest = outcomes.reduce((a, b) => (b.res.remainingPoints < a.res.remainingPoints ? b : a));
  const { policy: p, res } = tightest;
  ctx.set({
    'RateLimit-Limit': String(p.points),
    'RateLimit-Remaining': String(Math.max(0, res.remainingPoints)),
    'RateLimit-Reset': String(Math.max(0, Math.ceil(res.msBeforeNext / 1000))),
    'RateLimit-Policy': outcomes.map((o) => `${o.policy.points};w=${o.policy.windowSeconds}`).join(', '),
  });
  return tightest;
}

function refuse(outcomes: Outcome[]): void {
  const refused = outcomes.filter((o) => o.refused);
  if (!refused.length) return;
  const longest = refused.reduce((a, b) => (b.res.msBeforeNext > a.res.msBeforeNext ? b : a));
  const retryAfter = Math.max(1, Math.ceil(longest.res.msBeforeNext / 1000));
  const { points, windowSeconds, name } = longest.policy;
  throw new Problem(
    429,
    'rate-limited',
    'Too many requests',
    `the limit is ${points} requests per ${windowSeconds} s ${DESCRIBE[name]}; try again in ${retryAfter} s`,
    { limit: points, windowSeconds, scope: name },
    {
      'Retry-After': String(retryAfter),
      'RateLimit-Limit': String(points),
      'RateLimit-Remaining': '0',
      'RateLimit-Reset': String(retryAfter),
    },
  );
}

export interface RateLimits {
  /** Every request but health and metrics: its key's and its IP's budget, then the key's concurrency cap. */
  requests: (ctx: Context, next: Next) => Promise<void>;
  /** The stricter budget of routes that check a password or open a session, mounted on those routes. */
  signing: (ctx: Context, next: Next) => Promise<void>;
}

export function createRateLimits(db: Db, settings: RateLimitSettings): RateLimits {
  const prefix = settings.keyPrefix ?? 'api';
  const perKey = policy(db, 'key', settings.points, settings.windowMs, prefix);
  const perIp = policy(db, 'ip', settings.ipPoints, settings.windowMs, prefix);
  const signingKey = policy(db, 'signing-key', settings.signingPoints, settings.signingWindowMs, prefix);
  const signingIp = policy(db, 'signing-ip', settings.signingIpPoints, settings.signingWindowMs, prefix);
  const inFlight = new Map<string, number>();
  const count = countAhead();

  return {
    async requests(ctx, next) {
      if (EXEMPT.has(ctx.path)) return next();
      const subject = subjectOf(ctx);
      // The key's place among its requests in progress is taken first, in memory: a flood of parallel requests is
      // cut off before any of them is counted in PostgreSQL.
      if (subject) {
        const running = inFlight.get(subject) ?? 0;
        if (running >= settings.concurrent) {
          throw new Problem(
            429,
            'too-many-concurrent-requests',
            'Too many requests',
            `an API key may have at most ${settings.concurrent} requests in progress at once; wait for one to finish`,
            { limit: settings.concurrent, scope: 'concurrent' },
            { 'Retry-After': '1' },
          );
        }
        inFlight.set(subject, running + 1);
      }
      try {
        const outcomes = await Promise.all([count(perIp, ctx.ip), ...(subject ? [count(perKey, subject)] : [])]);
        setHeaders(ctx, outcomes);
        refuse(outcomes);
        await next();
      } finally {
        if (subject) {
          const left = (inFlight.get(subject) ?? 1) - 1;
          if (left > 0) inFlight.set(subject, left);
          else inFlight.delete(subject);
        }
      }
    },
    async signing(ctx, next) {
      const subject = subjectOf(ctx);
      const outcomes = await Promise.all([consume(signingIp, ctx.ip), ...(subject ? [consume(signingKey, subject)] : [])]);
      setHeaders(ctx, outcomes);
      refuse(outcomes);
      await next();
    },
  };
}
