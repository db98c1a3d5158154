import { durationMs } from '../../common/durations';

/** When the reminder goes: the reminder period before the due date, never before the assignment opened. */
export function reminderAt(openedAt: number, dueAt: string, reminderBefore: string): number {
  return Math.max(openedAt, Date.parse(dueAt) - durationMs(reminderBefore));
}

/** Milliseconds from now until a moment; zero once it has passed. */
export const until = (at: number, now: number): number => Math.max(0, at - now);
