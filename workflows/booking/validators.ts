import {
  checkInWindow,
  nextTier,
  type ApproveBookingArgs,
  type BookingInput,
  type BookingState,
  type BookingStateName,
  type EndBookingArgs,
  type RejectBookingArgs,
} from '../../common/booking';
import { durationMs } from '../../common/durations';
import { FailureType, refuse } from '../../common/failures';
import type { Actor } from '../../common/roles';
import { requireProof, requireState, requireText } from '../lib';

/**
 * What an Update may not do to a booking, refused before it enters history. Each first requires its proof (an actor
 * and a grant ID); the recording activity checks the grant, the person and the state again against PostgreSQL. No
 * role passes for another: an admin is refused like anyone who is not the requester or a named approver.
 */
const ENDED: BookingStateName[] = ['rejected', 'withdrawn', 'completed', 'no_show', 'cancelled', 'bumped'];
const subject = (s: BookingState) => `booking ${s.bookingId}`;
const isRequester = (s: BookingState, actor: Actor) => actor.username === s.requester;

function requireRequester(s: BookingState, actor: Actor, what: string): void {
  if (!isRequester(s, actor)) refuse(FailureType.Forbidden, `only the person who requested the booking ${what}`);
}

/** The tier the approver acts for: the next one, which names them; never the requester. */
export function approverTier(s: BookingState, actor: Actor): number {
  requireState(subject(s), s.state, ['requested'], ENDED);
  if (!s.recorded) refuse(FailureType.WrongStage, `${subject(s)} is still being recorded`);
  if (isRequester(s, actor)) refuse(FailureType.Forbidden, 'the approver of a booking is not the person who requested it');
  const tier = nextTier(s);
  if (tier === null) refuse(FailureType.WrongStage, `${subject(s)} needs no further approval`);
  if (!s.tiers[tier].includes(actor.username)) {
    const later = s.tiers.findIndex((t, i) => i > tier && t.includes(actor.username));
    refuse(
      later >= 0 ? FailureType.WrongStage : FailureType.Forbidden,
      later >= 0 ? `${subject(s)} awaits tier ${tier + 1} approval before tier ${later + 1}` : `${actor.username} is not a tier ${tier + 1} approver of instrument ${s.code}`,
    );
  }
  if (s.approvals.some((a) => a.username === actor.username)) refuse(FailureType.DuplicateDecision, `${actor.username} has already approved ${subject(s)}`);
  return tier;
}

export function validateApprove(s: BookingState, args: ApproveBookingArgs): void {
  requireProof(args);
  approverTier(s, args.actor);
}

export function validateReject(s: BookingState, args: RejectBookingArgs): void {
  requireProof(args);
  approverTier(s, args.actor);
  requireText(args.reason, 'a reason');
}

export function validateWithdraw(s: BookingState, args: EndBookingArgs): void {
  requireProof(args);
  requireRequester(s, args.actor, 'withdraws it');
  requireState(subject(s), s.state, ['requested'], ENDED);
}

export function validateCancel(s: BookingState, args: EndBookingArgs, managers: readonly string[]): void {
  requireProof(args);
  const a = args.actor;
  if (!isRequester(s, a) && !a.roles.some((r) => managers.includes(r)) && !s.tiers.some((t) => t.includes(a.username))) {
    refuse(FailureType.Forbidden, 'only the requester, an approver of the instrument, QA or the lab director cancel a booking');
  }
  requireState(subject(s), s.state, ['approved'], ENDED);
  requireText(args.reason, 'a reason');
}

export function validateCheckIn(s: BookingState, args: { actor: Actor; grant: string }, settings: BookingInput['settings'], now: number): void {
  requireProof(args);
  requireRequester(s, args.actor, 'checks in');
  requireState(subject(s), s.state, ['approved'], ENDED);
  const w = checkInWindow(s, settings, durationMs);
  if (now < w.opens || now >= w.closes) {
    refuse(FailureType.WrongStage, `${subject(s)} may be checked into from ${new Date(w.opens).toISOString()} until ${new Date(w.closes).toISOString()}`);
  }
}

export function validateCheckOut(s: BookingState, args: { actor: Actor; grant: string }): void {
  requireProof(args);
  requireRequester(s, args.actor, 'checks out');
  requireState(subject(s), s.state, ['checked_in'], ENDED);
}
