import { defineQuery, defineSignal, defineUpdate } from '@temporalio/workflow';
import type { Actor, Role } from './roles';

/**
 * A booking of an instrument, one run per booking, `booking:<id>` (the reservation row's ID):
 * requested → approved | rejected | withdrawn; approved → checked_in | no_show | cancelled; checked_in → completed;
 * any holding state → bumped when the instrument goes out of service or a blocking maintenance window takes its
 * period. The period itself is held by PostgreSQL (instrument_reservations' exclusion constraint). Bundle-safe.
 */
export const BOOKING_STATES = ['requested', 'approved', 'rejected', 'withdrawn', 'checked_in', 'completed', 'no_show', 'cancelled', 'bumped'] as const;
export type BookingStateName = (typeof BOOKING_STATES)[number];
export const HOLDING_BOOKING_STATES: readonly BookingStateName[] = ['requested', 'approved', 'checked_in'];
export const ENDED_BOOKING_STATES: readonly BookingStateName[] = ['rejected', 'withdrawn', 'completed', 'no_show', 'cancelled', 'bumped'];

/** How an instrument's bookings are approved: at once, by one of a list of people, or by two tiers in order. */
export const APPROVAL_RULES = ['automatic', 'single', 'tiered'] as const;
export type ApprovalRule = (typeof APPROVAL_RULES)[number];

/** Durations the run keeps (BOOKING_* settings; tests pass seconds). */
export interface BookingSettings {
  /** After a request, how long the approvers have before it is escalated. */
  approvalDeadline: string;
  /** How long before the start the requester may check in. */
  checkInBefore: string;
  /** How long after the start a booking not checked into is a no-show (the check-in window closes then). */
  noShowGrace: string;
  /** How long after the end a checked-in booking is checked out by the run. */
  checkOutGrace: string;
}

export const DEFAULT_BOOKING_SETTINGS: BookingSettings = { approvalDeadline: '24h', checkInBefore: '15m', noShowGrace: '15m', checkOutGrace: '15m' };

export interface BookingInput {
  bookingId: string;
  instrumentId: string;
  code: string;
  requester: { userId: string; username: string };
  start: string;
  end: string;
  rule: ApprovalRule;
  /** Usernames who may approve, per tier, in order (none for automatic). */
  tiers: string[][];
  settings: BookingSettings;
  /** The requester's proof for the request itself: the recording step consumes it. */
  request: { actor: Actor; grant: string };
}

export interface BookingApproval {
  tier: number;
  username: string;
  at: string;
}

export interface BookingState {
  workflowId: string;
  bookingId: string;
  code: string;
  requester: string;
  start: string;
  end: string;
  state: BookingStateName;
  /** Whether the request has been recorded (the run's first step). */
  recorded: boolean;
  rule: ApprovalRule;
  tiers: string[][];
  approvals: BookingApproval[];
  approvalDueAt: string;
  escalated: boolean;
  checkedInAt: string | null;
  endedAt: string | null;
  endedBecause: string | null;
}

interface Proven {
  actor: Actor;
  grant: string;
}

export type ApproveBookingArgs = Proven & { comment?: string };
export type RejectBookingArgs = Proven & { reason: string };
export type EndBookingArgs = Proven & { reason?: string };
export type BookingPresenceArgs = Proven;

export const bookingStateQuery = defineQuery<BookingState>('bookingState');
export const approveBookingUpdate = defineUpdate<BookingState, [ApproveBookingArgs]>('approveBooking');
export const rejectBookingUpdate = defineUpdate<BookingState, [RejectBookingArgs]>('rejectBooking');
export const withdrawBookingUpdate = defineUpdate<BookingState, [EndBookingArgs]>('withdrawBooking');
export const cancelBookingUpdate = defineUpdate<BookingState, [EndBookingArgs]>('cancelBooking');
export const checkInUpdate = defineUpdate<BookingState, [BookingPresenceArgs]>('checkIn');
export const checkOutUpdate = defineUpdate<BookingState, [BookingPresenceArgs]>('checkOut');
/** The instrument's side bumped the booking in PostgreSQL: the run follows, as far as PostgreSQL bears it out. */
export const bookingBumpedSignal = defineSignal<[]>('bookingBumped');

export const BOOKING_ACTIONS = [
  'booking.request',
  'booking.approve',
  'booking.reject',
  'booking.withdraw',
  'booking.cancel',
  'booking.check_in',
  'booking.check_out',
] as const;
export type BookingAction = (typeof BOOKING_ACTIONS)[number];

/** Who may book an instrument (and so check in): the bench, its director and QA; the gate asks the rest. */
export const BOOKERS: readonly Role[] = ['lab_technician', 'lab_director', 'qa_manager'];
/** Who sets an instrument's approval rule and may cancel anyone's booking of it. */
export const BOOKING_MANAGERS: readonly Role[] = ['qa_manager', 'lab_director'];

/** What a grant binds per action: the arguments the run records, built alike by the API and the recording step. */
export function boundBookingArgs(action: BookingAction, request: unknown): unknown {
  const r = (request ?? {}) as Record<string, unknown>;
  switch (action) {
    case 'booking.request':
      return { code: r.code ?? null, start: r.start ?? null, end: r.end ?? null };
    case 'booking.approve':
      return { comment: r.comment ?? null };
    case 'booking.reject':
    case 'booking.withdraw':
    case 'booking.cancel':
      return { reason: r.reason ?? null };
    case 'booking.check_in':
    case 'booking.check_out':
      return {};
  }
}

/** The tier (0-based) whose approval is awaited next, or null when every tier has approved. */
export function nextTier(s: Pick<BookingState, 'tiers' | 'approvals'>): number | null {
  return s.approvals.length < s.tiers.length ? s.approvals.length : null;
}

/** The check-in window: from `checkInBefore` before the start until the no-show moment. */
export function checkInWindow(s: Pick<BookingState, 'start'>, settings: BookingSettings, ms: (d: string) => number): { opens: number; closes: number } {
  const start = Date.parse(s.start);
  return { opens: start - ms(settings.checkInBefore), closes: start + ms(settings.noShowGrace) };
}
