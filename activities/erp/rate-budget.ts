/**
 * One request budget for every call to the ERP from this process (sync pages, details, outbound writes): a token
 * bucket, and a pause that a 429's Retry-After imposes on all callers at once.
 */
export class RateBudget {
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

  pause(ms: number): void {
    this.pausedUntil = Math.max(this.pausedUntil, Date.now() + ms);
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
