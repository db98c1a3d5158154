/** Durations as people write them: '90s', '15m', '72h', '365d', '500ms'. */
const UNIT_MS = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 } as const;
export const DURATION_PATTERN = /^(\d+(?:\.\d+)?)(ms|s|m|h|d)$/;

export function durationMs(value: string): number {
  const match = DURATION_PATTERN.exec(value.trim());
  if (!match) throw new TypeError(`not a duration: ${JSON.stringify(value)} (use e.g. 30s, 15m, 72h, 365d)`);
  return Math.round(Number(match[1]) * UNIT_MS[match[2] as keyof typeof UNIT_MS]);
}

export function isDuration(value: string): boolean {
  return DURATION_PATTERN.test(value.trim());
}
