import { durationMs } from '../../common/durations';
import { iso } from '../lib/time';

/** What a review stage keeps of its deadline. */
export interface StageClock {
  dueAt: string;
  /** Whether the reminder is spent (sent, or not worth sending). */
  reminded: boolean;
  escalated: boolean;
}

/**
 * The deadline of a stage opened (or extended) at `nowMs`. A reminder is only worth sending when it falls after
 * that moment, so one that would already be due counts as spent.
 */
export function stageClock(nowMs: number, dueAtMs: number, reminderBefore: string): StageClock {
  const dueAt = iso(dueAtMs);
  return { dueAt, reminded: Date.parse(dueAt) - durationMs(reminderBefore) <= nowMs, escalated: false };
}

/** The clock of a stage that opens now and may take `due` (e.g. '72h'). */
export function openedStageClock(openedAtMs: number, due: string, reminderBefore: string): StageClock {
  return stageClock(openedAtMs, openedAtMs + durationMs(due), reminderBefore);
}

/**
 * What a stage still waiting for decisions does next: escalate once it is overdue, remind once the reminder is
 * due, else sleep until the next of the two (`wakeInMs`), or with both spent wait for the decisions alone (null).
 */
export type StageAlarm = { kind: 'escalation' } | { kind: 'reminder' } | { kind: 'wait'; wakeInMs: number | null };

export function nextStageAlarm(clock: StageClock, reminderBefore: string, nowMs: number): StageAlarm {
  const due = Date.parse(clock.dueAt);
  const remindAt = due - durationMs(reminderBefore);
  if (!clock.escalated && nowMs >= due) return { kind: 'escalation' };
  if (!clock.reminded && nowMs >= remindAt) return { kind: 'reminder' };
  const wakeAt = !clock.reminded ? remindAt : !clock.escalated ? due : null;
  return { kind: 'wait', wakeInMs: wakeAt === null ? null : Math.max(wakeAt - nowMs, 1) };
}

/** How long an approved version waits before it becomes effective: 0 when the date is absent or past. */
export function untilEffectiveMs(effectiveDate: string | null, nowMs: number): number {
  const effectiveAt = effectiveDate ? Date.parse(effectiveDate) : 0;
  return effectiveAt > nowMs ? effectiveAt - nowMs : 0;
}

/** When the next periodic review falls due, counted from `nowMs` (the version became effective, or was reviewed). */
export function nextPeriodicReviewAt(nowMs: number, periodicReview: string): string {
  return iso(nowMs + durationMs(periodicReview));
}

/** How long an effective version sleeps before its periodic review opens (at least 1 ms: a timer, never a spin). */
export function untilPeriodicReviewMs(nextReviewAt: string, nowMs: number): number {
  return Math.max(Date.parse(nextReviewAt) - nowMs, 1);
}
