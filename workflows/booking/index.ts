import type { UpdateDefinition } from '@temporalio/common';
import { allHandlersFinished, condition, setHandler, workflowInfo } from '@temporalio/workflow';
import {
  approveBookingUpdate,
  bookingBumpedSignal,
  bookingStateQuery,
  BOOKING_MANAGERS,
  cancelBookingUpdate,
  checkInUpdate,
  checkInWindow,
  checkOutUpdate,
  rejectBookingUpdate,
  withdrawBookingUpdate,
  type BookingInput,
  type BookingState,
} from '../../common/booking';
import { durationMs } from '../../common/durations';
import { iso } from '../lib';
import { upgradesWithEachBuild } from '../lib/versioning';
import { BookingCase } from './booking-case';
import { escalationPriority, owed, sleepFor } from './deadlines';
import * as validators from './validators';

upgradesWithEachBuild(bookingWorkflow);

/**
 * One booking of an instrument, `booking:<id>`: requested, approved by the instrument's rule (at once, by one
 * approver, or by two tiers in order; never by the requester), checked into within its window and out at its end.
 * The run escalates an approval past its deadline, lets a request that reaches its start unapproved lapse, marks a
 * no-show at start + grace, checks out at end + grace, and follows a bump by the instrument's side.
 */
export async function bookingWorkflow(input: BookingInput): Promise<BookingState> {
  const booking = new BookingCase(input, workflowInfo().workflowId, Date.now());
  const s = booking.state;
  const settings = input.settings;

  function onUpdate<A>(update: UpdateDefinition<BookingState, [A]>, validate: (s: BookingState, args: A) => void, act: (args: A) => Promise<void>) {
    setHandler(
      update,
      async (args: A) => {
        await booking.inTurn(
          () => validate(s, args),
          () => act(args),
        );
        return s;
      },
      { validator: (args: A) => validate(s, args) },
    );
  }

  setHandler(bookingStateQuery, () => s);
  setHandler(bookingBumpedSignal, () => {
    booking.bumpHeard = true;
    booking.changes += 1;
  });
  onUpdate(approveBookingUpdate, validators.validateApprove, async (a) => {
    const tier = validators.approverTier(s, a.actor);
    const last = tier === s.tiers.length - 1;
    await booking.record('booking.approve', last ? 'approved' : 'requested', a, { tier });
    s.approvals.push({ tier: tier + 1, username: a.actor.username, at: iso(Date.now()) });
    if (last) s.state = 'approved';
    booking.changes += 1;
    booking.publish();
  });
  onUpdate(rejectBookingUpdate, validators.validateReject, async (a) => {
    const tier = validators.approverTier(s, a.actor);
    await booking.record('booking.reject', 'rejected', a, { tier });
    ended('rejected', a.reason);
  });
  onUpdate(withdrawBookingUpdate, validators.validateWithdraw, async (a) => {
    await booking.record('booking.withdraw', 'withdrawn', a);
    ended('withdrawn', a.reason ?? null);
  });
  onUpdate(cancelBookingUpdate, (st, a) => validators.validateCancel(st, a, BOOKING_MANAGERS), async (a) => {
    await booking.record('booking.cancel', 'cancelled', a);
    ended('cancelled', a.reason ?? null);
  });
  onUpdate(checkInUpdate, (st, a) => validators.validateCheckIn(st, a, settings, Date.now()), async (a) => {
    const w = checkInWindow(s, settings, durationMs);
    await booking.record('booking.check_in', 'checked_in', a, { window: { opens: iso(w.opens), closes: iso(w.closes) } });
    s.state = 'checked_in';
    s.checkedInAt = iso(Date.now());
    booking.changes += 1;
    booking.publish();
  });
  onUpdate(checkOutUpdate, validators.validateCheckOut, async (a) => {
    await booking.record('booking.check_out', 'completed', a);
    ended('completed', 'checked out');
  });

  function ended(to: BookingState['state'], because: string | null) {
    s.state = to;
    s.endedBecause = because;
    s.endedAt = iso(Date.now());
    booking.changes += 1;
    booking.publish();
  }

  booking.publish();
  await booking.inTurn(
    () => undefined,
    () => booking.request(() => Date.now()),
  );
  for (;;) {
    await booking.settled();
    if (!booking.holding) break;
    if (booking.bumpHeard) {
      booking.bumpHeard = false;
      await booking.inTurn(() => undefined, async () => (booking.holding ? void (await booking.machine('bumped', 'bumped', Date.now())) : undefined));
      continue;
    }
    const step = owed(s, settings, Date.now());
    if (step) {
      await booking.inTurn(() => undefined, async () => {
        const now = Date.now();
        if (owed(s, settings, now) !== step) return;
        if (step === 'escalate') await booking.machine('escalated', 'requested', now, { priority: escalationPriority(s, settings, now), tier: s.approvals.length });
        else if (step === 'lapse') await booking.machine('lapsed', 'cancelled', now, { because: 'not approved before its start' });
        else if (step === 'no_show') await booking.machine('no_show', 'no_show', now, { because: 'not checked into by the end of the check-in window' });
        else await booking.machine('checked_out', 'completed', now, { because: 'checked out automatically after its end' });
      });
      continue;
    }
    const seen = booking.changes;
    const woken = () => booking.changes !== seen;
    const sleep = sleepFor(s, settings, Date.now());
    if (sleep !== null) await condition(woken, sleep);
    else await condition(woken);
  }
  await condition(allHandlersFinished);
  await booking.settled();
  await booking.drained();
  return s;
}
