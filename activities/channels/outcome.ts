/**
 * What a channel's answer means for the delivery: sent, worth another try (after the wait the service asked for),
 * or refused for good (a revoked webhook, an invalid number) and recorded, never retried.
 */
export type ChannelOutcome =
  | { kind: 'sent'; providerId?: string }
  | { kind: 'retry'; detail: string; retryAfterMs?: number }
  | { kind: 'refused'; detail: string };

/** Retry-After as seconds or an HTTP date, in milliseconds; undefined when absent or unreadable. */
export function retryAfterMs(value: string | null | undefined, now = Date.now()): number | undefined {
  if (!value) return undefined;
  const seconds = Number(value);
  if (Number.isFinite(seconds) && seconds >= 0) return seconds * 1000;
  const at = Date.parse(value);
  return Number.isNaN(at) ? undefined : Math.max(0, at - now);
}

/** A short, secret-free account of an error for the delivery's row and the logs. */
export const describe = (err: unknown): string => (err instanceof Error ? `${err.name}: ${err.message}` : String(err)).slice(0, 300);
