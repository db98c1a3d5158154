import { checkInWindow, type BookingInput, type BookingState } from '../../common/booking';
import { durationMs } from '../../common/durations';

/** What the run owes at this moment, by itself; null when nothing. */
export type OwedStep = 'escalate' | 'lapse' | 'no_show' | 'check_out';

export function owed(s: BookingState, settings: BookingInput['settings'], now: number): OwedStep | null {
  if (!s.recorded) return null;
  if (s.state === 'requested') {
    if (now >= Date.parse(s.start)) return 'lapse';
    if (!s.escalated && now >= Date.parse(s.approvalDueAt)) return 'escalate';
  }
  if (s.state === 'approved' && now >= checkInWindow(s, settings, durationMs).closes) return 'no_show';
  if (s.state === 'checked_in' && now >= Date.parse(s.end) + durationMs(settings.checkOutGrace)) return 'check_out';
  return null;
}

/** How long until the next thing falls due (null: nothing is scheduled, the booking has ended). */
export function sleepFor(s: BookingState, settings: BookingInput['settings'], now: number): number | null {
  const moments: number[] = [];
  if (s.state === 'requested') {
    moments.push(Date.parse(s.start));
    if (!s.escalated) moments.push(Date.parse(s.approvalDueAt));
  }
  if (s.state === 'approved') moments.push(checkInWindow(s, settings, durationMs).closes);
  if (s.state === 'checked_in') moments.push(Date.parse(s.end) + durationMs(settings.checkOutGrace));
  if (!moments.length) return null;
  return Math.max(0, Math.min(...moments) - now);
}

/** An escalation is urgent when the booking starts within the approval deadline from now. */
export const escalationPriority = (s: BookingState, settings: BookingInput['settings'], now: number) =>
  Date.parse(s.start) - now <= durationMs(settings.approvalDeadline) ? ('urgent' as const) : ('normal' as const);
