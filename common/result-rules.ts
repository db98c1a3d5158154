import type { Flag, RangeSnapshot } from './results';

/**
 * How a numeric result is judged beyond its reference range: the test's measuring range (outside it the value is
 * `invalid`), the warning shoulders, and the delta check against the patient's previous verified result.
 * Bundle-safe: the run and the activities share these definitions.
 */
export interface MeasuringRange {
  low: number | null;
  high: number | null;
}

/** The delta limit a test's policy configures: an absolute difference or a percentage, within a time window. */
export interface DeltaPolicy {
  limit: number;
  kind: 'absolute' | 'percent';
  /** How far back a previous result counts (hours, between collections); null: any previous result. */
  windowHours: number | null;
}

/** The delta check as judged, kept with the result. `exceeded` is null when there was nothing to compare with. */
export interface DeltaCheck extends DeltaPolicy {
  previous: { workflowId: string; value: number; collectedAt: string } | null;
  difference: number | null;
  percentChange: number | null;
  exceeded: boolean | null;
}

export const outsideMeasuring = (value: number, m: MeasuringRange | null): boolean =>
  !!m && ((m.low !== null && value < m.low) || (m.high !== null && value > m.high));

/**
 * The flag of a numeric value: `invalid` outside the measuring range (whatever the reference range), then, against
 * the reference range, critical, warning shoulder, low/high, normal. No reference range, no flag (never a false
 * "normal").
 */
export function judgeValue(value: number, range: RangeSnapshot | null, measuring: MeasuringRange | null): Flag | null {
  if (outsideMeasuring(value, measuring)) return 'invalid';
  if (!range) return null;
  if (range.criticalLow !== null && value < range.criticalLow) return 'critical_low';
  if (range.criticalHigh !== null && value > range.criticalHigh) return 'critical_high';
  if (range.warningLow != null && value < range.warningLow) return 'warning_low';
  if (range.warningHigh != null && value > range.warningHigh) return 'warning_high';
  if (range.low !== null && value < range.low) return 'low';
  if (range.high !== null && value > range.high) return 'high';
  return 'normal';
}

export const CRITICAL_FLAGS: readonly Flag[] = ['critical_low', 'critical_high'];

/** The delta check of a value against the previous one (or none to compare with). */
export function deltaCheck(policy: DeltaPolicy, value: number, previous: DeltaCheck['previous']): DeltaCheck {
  if (!previous) return { ...policy, previous: null, difference: null, percentChange: null, exceeded: null };
  const difference = Number((value - previous.value).toPrecision(12));
  const percentChange = previous.value === 0 ? null : (Math.abs(difference) / Math.abs(previous.value)) * 100;
  const exceeded =
    policy.kind === 'absolute' ? Math.abs(difference) > policy.limit : percentChange === null ? difference !== 0 : percentChange > policy.limit;
  return { ...policy, previous, difference, percentChange: percentChange === null ? null : Math.round(percentChange * 100) / 100, exceeded };
}
