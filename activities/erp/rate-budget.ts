import type { Db } from '../../db/knex';

/** The requests an ERP allows: take() before each, pause() when it answers 429 with Retry-After. */
export interface RequestBudget {
  take(): Promise<unknown>;
  pause(ms: number): Promise<void>;
}

/**
 * A budget for one process alone (sync pages, details, outbound writes): a token bucket, and a pause that a 429's
 * Retry-After imposes on all callers at once. For an adapter without a database (tools, some tests).
 */
export class RateBudget implements RequestBudget {
  private tokens: number;
  private refilledAt = Date.now();
  private pausedUntil = 0;

  constructor(
    private readonly perSecond: number,
    private readonly burst = Math.max(1, perSecond),
  ) {
    this.tokens = this.burst;
  }

  async take(): Promise<void> {
    for (;;) {
      const now = Date.now();
      this.tokens = Math.min(this.burst, this.tokens + ((now - this.refilledAt) * this.perSecond) / 1000);
      this.refilledAt = now;
      const wait = this.pausedUntil > now ? this.pausedUntil - now : this.tokens >= 1 ? 0 : ((1 - this.tokens) * 1000) / this.perSecond;
      if (wait === 0) {
        this.tokens -= 1;
        return;
      }
      await new Promise((resolve) => setTimeout(resolve, Math.ceil(wait)));
    }
  }

  async pause(ms: number): Promise<void> {
    this.pausedUntil = Math.max(this.pausedUntil, Date.now() + ms);
  }
}

/**
 * One budget for every worker that talks to the same ERP site, kept in Postgres (erp_rate_budgets). Each request
 * reserves the next slot with one atomic UPDATE: the row holds the time the next request may go, which advances by
 * 1/rate per request (a token bucket of `burst` tokens, kept as its next slot), and the pause a 429's Retry-After
 * imposes, which every worker's next reservation waits out. Times are the database's clock, so workers on
 * different machines agree.
 */
export class SharedRateBudget implements RequestBudget {
  private readonly intervalMs: number;
  private readonly burst: number;
  private ready: Promise<unknown> | null = null;

  constructor(
    private readonly db: Db,
    private readonly site: string,
    perSecond: number,
    burst = Math.max(1, perSecond),
  ) {
    this.intervalMs = 1000 / perSecond;
    this.burst = burst;
  }

  private ensureRow(): Promise<unknown> {
    this.ready ??= this.db.raw('insert into erp_rate_budgets (site) values (?) on conflict do nothing', [this.site]).catch((err) => {
      this.ready = null;
      throw err;
    });
    return this.ready;
  }

  /**
   * Reserves the next slot without waiting for it: the slot granted and the database's time of the reservation (ms
   * since the epoch). A slot at or before `now` may go at once; a later one is the caller's to wait for.
   */
  async reserve(): Promise<{ slot: number; now: number }> {
    await this.ensureRow();
    for (;;) {
      const { rows } = await this.db.raw(
        `with clock as (select clock_timestamp() as now)
         update erp_rate_budgets b
            set next_at = greatest(b.next_at, b.paused_until, clock.now - make_interval(secs => ?::float8 / 1000)) + make_interval(secs => ?::float8 / 1000)
           from clock
          where b.site = ?
         returning extract(epoch from b.next_at) * 1000 - ? as slot, extract(epoch from clock.now) * 1000 as now`,
        [(this.burst - 1) * this.intervalMs, this.intervalMs, this.site, this.intervalMs],
      );
      if (rows.length) return { slot: Number(rows[0].slot), now: Number(rows[0].now) };
      this.ready = null;
      await this.ensureRow();
    }
  }

  /** Reserves the next slot; resolves once it has come, with the time it went (ms since the epoch, database clock). */
  async take(): Promise<number> {
    for (;;) {
      const { slot, now } = await this.reserve();
      if (slot <= now) return now;
      await new Promise((resolve) => setTimeout(resolve, Math.ceil(slot - now)));
      // A 429 seen meanwhile (by any worker) may have paused the site past this slot: then queue behind the pause.
      const paused = await this.db('erp_rate_budgets')
        .where({ site: this.site })
        .first(this.db.raw('paused_until > clock_timestamp() as paused'));
      if (!paused?.paused) return slot;
    }
  }

  async pause(ms: number): Promise<void> {
    await this.db.raw(
      `insert into erp_rate_budgets as b (site, paused_until) values (?, clock_timestamp() + make_interval(secs => ?::float8 / 1000))
       on conflict (site) do update set paused_until = greatest(b.paused_until, excluded.paused_until)`,
      [this.site, ms],
    );
  }
}

/** Retry-After as seconds or an HTTP date, in milliseconds. */
export function retryAfterMs(value: string | null, fallbackMs = 1000): number {
  if (!value) return fallbackMs;
  const seconds = Number(value);
  if (Number.isFinite(seconds)) return Math.max(0, seconds * 1000);
  const at = Date.parse(value);
  return Number.isNaN(at) ? fallbackMs : Math.max(0, at - Date.now());
}
