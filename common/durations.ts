/** Durations as people write them: '90s', '15m', '72h', '365d', '500ms'. */
const UNIT_MS = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 } as const;
export const DURATION_PATTERN = /^(\d+(?:\.\d+)?)(ms|s|m|h|d)$/;

/**
 * The longest duration labflow accepts anywhere (request, per-type configuration, environment): ten 365-day years.
 * Nothing a lab waits for legitimately comes near it, and it keeps every deadline far inside Date's range.
 */
export const MAX_DURATION = '3650d';
export const MAX_DURATION_MS = 3650 * UNIT_MS.d;

/** The duration in milliseconds, or null when the text is not one or is too large to be a safe integer. */
export function parseDuration(value: string): number | null {
  const match = DURATION_PATTERN.exec(value.trim());
  if (!match) return null;
  const ms = Math.round(Number(match[1]) * UNIT_MS[match[2] as keyof typeof UNIT_MS]);
  return Number.isSafeInteger(ms) ? ms : null;
}

/**
 * Workflows compute deadlines with this, so it keeps the arithmetic runs already recorded (a run started before
 * durations were bounded replays the same); new input is checked with durationProblem at the edges.
 */
export function durationMs(value: string): number {
  const match = DURATION_PATTERN.exec(value.trim());
  if (!match) throw new TypeError(`not a duration: ${JSON.stringify(value)} (use e.g. 30s, 15m, 72h, 365d)`);
  return Math.round(Number(match[1]) * UNIT_MS[match[2] as keyof typeof UNIT_MS]);
}

/** Well-formed and within MAX_DURATION (zero included). */
export function isDuration(value: string): boolean {
  return durationProblem(value, { allowZero: true }) === null;
}

export interface DurationBounds {
  /** Inclusive; default: longer than zero. */
  min?: string;
  /** Inclusive; default and upper limit: MAX_DURATION. */
  max?: string;
  allowZero?: boolean;
}

/** Why the text is not an acceptable duration, or null when it is one within the bounds. */
export function durationProblem(value: string, bounds: DurationBounds = {}): string | null {
  if (!DURATION_PATTERN.test(value.trim())) return 'expected a duration such as 30s, 15m, 72h or 365d';
  const ms = parseDuration(value);
  const max = bounds.max ?? MAX_DURATION;
  const maxMs = Math.min(parseDuration(max) ?? MAX_DURATION_MS, MAX_DURATION_MS);
  const maxText = maxMs === MAX_DURATION_MS ? `${MAX_DURATION} (10 years)` : max;
  if (ms === null || ms > maxMs) return `must be at most ${maxText}`;
  if (bounds.min !== undefined && ms < (parseDuration(bounds.min) ?? 0)) return `must be at least ${bounds.min}`;
  if (ms === 0 && !bounds.allowZero) return 'must be longer than zero';
  return null;
}

/**
 * The earliest and latest instants labflow accepts as a date: nothing it records happened before 1900, and nothing
 * it schedules lies more than a century ahead (a due date, an effective date, a backfill end).
 */
export const EARLIEST_DATE = '1900-01-01T00:00:00Z';
export const DATE_HORIZON_YEARS = 100;

/** Why the ISO instant is out of bounds, or null. `now` is a parameter so the caller chooses its clock. */
export function dateProblem(value: string, now: number): string | null {
  const at = Date.parse(value);
  if (Number.isNaN(at)) return 'not a date';
  if (at < Date.parse(EARLIEST_DATE)) return 'must not be before 1900-01-01';
  const horizon = new Date(now);
  horizon.setUTCFullYear(horizon.getUTCFullYear() + DATE_HORIZON_YEARS);
  if (at > horizon.getTime())
    return `must not be more than ${DATE_HORIZON_YEARS} years ahead (after ${horizon.toISOString().slice(0, 10)})`;
  return null;
}
