import type { AssigneeRef } from '../../common/assignees';
import {
  DEFAULT_REOPEN_WINDOW,
  RISK_DURATIONS,
  type CapaDurations,
  type CapaStage,
  type CapaState,
  type RiskLevel,
  type StageDeadline,
} from '../../common/capa';
import { durationMs } from '../../common/durations';
import { iso } from '../lib/time';
import { openActions, type WantedTask } from './tasks';

/** The durations for a risk level: the level's defaults, then the CAPA's own overrides, then triage's. */
export function durationsFor(level: RiskLevel, fromInput?: Partial<CapaDurations>, fromTriage?: Partial<CapaDurations>): CapaDurations {
  return { ...RISK_DURATIONS[level], ...fromInput, ...fromTriage };
}

/** A stage's deadline from now; a deadline too close for its reminder counts as already reminded. */
export function stageDeadline(stage: CapaStage, duration: string, reminderBefore: string, now: number): StageDeadline {
  const dueAt = now + durationMs(duration);
  return { stage, dueAt: iso(dueAt), reminded: dueAt - durationMs(reminderBefore) <= now, escalated: false };
}

/** Whether the reminder before this due date is already past (so none is sent). */
export const reminderPast = (dueAt: string, reminderBefore: string, now: number): boolean =>
  Date.parse(dueAt) - durationMs(reminderBefore) <= now;

export const afterDuration = (now: number, duration: string): string => iso(now + durationMs(duration));

/** Until when a CAPA closed now may be reopened within its run. */
export const reopenUntil = (now: number, window: string | undefined): string => afterDuration(now, window ?? DEFAULT_REOPEN_WINDOW);

/** Something with a due date and a holder: the open stage's deadline, or an open action. */
export interface Due {
  what: string;
  holder: AssigneeRef;
  dueAt: string;
  /** The record the reminder and escalation marks are kept on (the stage deadline or the action itself). */
  flags: { reminded: boolean; escalated: boolean };
}

export function dues(s: CapaState): Due[] {
  if ((s.stage === 'containment' || s.stage === 'investigation') && s.deadline && s.owner) {
    return [{ what: s.stage, holder: s.owner, dueAt: s.deadline.dueAt, flags: s.deadline }];
  }
  if (s.stage === 'implementation')
    return openActions(s).map((x) => ({ what: `action ${x.id}`, holder: x.owner, dueAt: x.dueAt, flags: x }));
  return [];
}

/** The first due thing whose reminder or escalation is owed now, and which of the two. */
export function owedNow(s: CapaState, now: number): { due: Due; kind: 'reminder' | 'escalation' } | null {
  const reminderBefore = durationMs(s.durations.reminderBefore);
  const due = dues(s).find(
    (d) => (!d.flags.escalated && now >= Date.parse(d.dueAt)) || (!d.flags.reminded && now >= Date.parse(d.dueAt) - reminderBefore),
  );
  if (!due) return null;
  return { due, kind: !due.flags.escalated && now >= Date.parse(due.dueAt) ? 'escalation' : 'reminder' };
}

/** The instants at which the run must wake by itself: reminders, escalations, the effectiveness wait, the reopen window. */
export function wakeTimes(s: CapaState): number[] {
  const reminderBefore = durationMs(s.durations.reminderBefore);
  const wakes = dues(s).flatMap((d) => [
    ...(d.flags.reminded ? [] : [Date.parse(d.dueAt) - reminderBefore]),
    ...(d.flags.escalated ? [] : [Date.parse(d.dueAt)]),
  ]);
  if (s.stage === 'effectiveness_wait' && s.effectivenessDueAt) wakes.push(Date.parse(s.effectivenessDueAt));
  if (s.stage === 'closed' && s.reopenUntil) wakes.push(Date.parse(s.reopenUntil));
  return wakes;
}

/** How long the run sleeps before its next wake-up (at least a millisecond), or null when only a message can wake it. */
export function sleepFor(s: CapaState, now: number): number | null {
  const wakes = wakeTimes(s);
  return wakes.length ? Math.max(Math.min(...wakes) - now, 1) : null;
}

/** The earliest due date among the tasks (or, while effectiveness waits, its due date): the DueAt search attribute. */
export function earliestDue(s: CapaState, tasks: WantedTask[]): string | null {
  const candidates =
    s.stage === 'effectiveness_wait' ? [s.effectivenessDueAt] : tasks.map((t) => t.dueAt).concat(s.deadline?.dueAt ?? null);
  return candidates.filter((d): d is string => !!d).sort()[0] ?? null;
}
