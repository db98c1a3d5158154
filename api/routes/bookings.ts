import type { UpdateDefinition } from '@temporalio/client';
import type { z } from 'zod';
import {
  approveBookingUpdate,
  BOOKERS,
  BOOKING_MANAGERS,
  boundBookingArgs,
  cancelBookingUpdate,
  checkInUpdate,
  checkOutUpdate,
  rejectBookingUpdate,
  withdrawBookingUpdate,
  type BookingAction,
  type BookingState,
} from '../../common/booking';
import type { Actor, Role } from '../../common/roles';
import { INSTRUMENT_BOOKING } from '../../db/gate';
import type { ApiDeps } from '../deps';
import { problems } from '../problem';
import { route, type RouteSpec } from '../route';
import {
  approveBookingBody,
  bookingAnswer,
  bookingPage,
  bookingParams,
  bookingRequested,
  bookingRuleAnswer,
  bookingRuleBody,
  emptyBody,
  instrumentBookingsQuery,
  maintenanceWindowAnswer,
  maintenanceWindowBody,
  myBookingsQuery,
  optionalReasonBody,
  reasonBody,
  requestBookingBody,
} from '../schemas/booking';
import { instrumentParams } from '../schemas/equipment';
import {
  blockInstrument,
  bookingEnded,
  bookingRule,
  bookingView,
  instrumentBookings,
  loadBooking,
  myBookings,
  requestBooking,
  setBookingRule,
} from '../services/bookings';
import { loadInstrument } from '../services/equipment';
import { requireGate } from '../services/training';
import { grantAction } from '../signing';

const TAG = 'equipment';
const READERS: Role[] = ['lab_technician', 'lab_director', 'qa_manager', 'admin'];
type Params = z.infer<typeof bookingParams>;
type InstrumentParams = z.infer<typeof instrumentParams>;

export function bookingRoutes(deps: ApiDeps): RouteSpec[] {
  const { db } = deps;

  /**
   * One person's action on a booking: an ended booking is 409; the check-in passes the gate first (403 naming what
   * is missing); the API writes the single-use grant the recording step consumes and sends the run the request;
   * the Update's validator judges who may (the requester, the tier's approvers; no role passes for another).
   */
  function bookingAction<B extends object>(spec: { name: string; summary: string; body: z.ZodType<B>; update: UpdateDefinition<BookingState, [B & { actor: Actor; grant: string }]>; action: BookingAction }): RouteSpec {
    return route<Params, Record<string, never>, B>({
      method: 'post',
      path: `/bookings/:id/${spec.name}`,
      summary: spec.summary,
      tag: TAG,
      roles: BOOKERS,
      params: bookingParams,
      body: spec.body,
      response: bookingAnswer,
      problems: [403, 404, 409, 422],
      handler: async ({ params, body, actor, ctx }) => {
        const row = await loadBooking(db, params.id);
        if (bookingEnded(row)) throw problems.conflict('booking-ended', `booking ${row.id} is ${row.state}; nothing more can be done`);
        if (spec.action === 'booking.check_in') {
          await requireGate(deps, actor, { activity: INSTRUMENT_BOOKING, roles: BOOKERS, scope: row.code }, { entityType: 'booking', entityId: row.id });
        }
        const grant = await grantAction(deps, actor, { workflowId: row.workflow_id, action: spec.action, args: boundBookingArgs(spec.action, body) });
        await deps.temporal.workflow.getHandle(row.workflow_id).executeUpdate(spec.update, { args: [{ ...body, actor, grant }] });
        ctx.body = await bookingView(db, row.id);
      },
    });
  }

  return [
    route<InstrumentParams>({
      method: 'get',
      path: '/instruments/:code/booking-rule',
      summary: "How the instrument's bookings are approved: automatic, single (any one of a list) or tiered (two lists, in order)",
      tag: TAG,
      roles: READERS,
      params: instrumentParams,
      response: bookingRuleAnswer,
      handler: async ({ params, ctx }) => {
        ctx.body = await bookingRule(db, await loadInstrument(db, params.code));
      },
    }),
    route<InstrumentParams, Record<string, never>, z.infer<typeof bookingRuleBody>>({
      method: 'put',
      path: '/instruments/:code/booking-rule',
      summary: "Set the instrument's booking approval rule (QA or the lab director); bookings already requested keep theirs",
      tag: TAG,
      roles: BOOKING_MANAGERS,
      params: instrumentParams,
      body: bookingRuleBody,
      response: bookingRuleAnswer,
      problems: [422],
      handler: async ({ params, body, actor, ctx }) => {
        ctx.body = await setBookingRule(db, actor, params.code, body);
      },
    }),
    route<InstrumentParams, Record<string, never>, z.infer<typeof requestBookingBody>>({
      method: 'post',
      path: '/instruments/:code/bookings',
      summary:
        'Request a booking (trained and authorised people only: the gate `instrument.book`); an overlap is refused by the database (409 naming the clash), an instrument not usable 409 naming why',
      tag: TAG,
      roles: BOOKERS,
      params: instrumentParams,
      body: requestBookingBody,
      response: { 202: bookingRequested },
      problems: [403, 409, 422],
      handler: async ({ params, body, actor, ctx }) => {
        const requested = await requestBooking(deps, actor, params.code, body);
        ctx.status = 202;
        ctx.set('Location', `/api/v1/bookings/${requested.id}`);
        ctx.body = requested;
      },
    }),
    route<InstrumentParams, z.infer<typeof instrumentBookingsQuery>>({
      method: 'get',
      path: '/instruments/:code/bookings',
      summary: "The instrument's bookings ending after `from` (default now), soonest first, keyset-paged",
      tag: TAG,
      roles: READERS,
      params: instrumentParams,
      query: instrumentBookingsQuery,
      response: bookingPage,
      handler: async ({ params, query, ctx }) => {
        ctx.body = await instrumentBookings(db, params.code, query);
      },
    }),
    route<InstrumentParams, Record<string, never>, z.infer<typeof maintenanceWindowBody>>({
      method: 'post',
      path: '/instruments/:code/maintenance-windows',
      summary: 'Block the instrument for maintenance over a period (QA or the lab director): the bookings it overlaps are bumped; a window overlapping another 409',
      tag: TAG,
      roles: BOOKING_MANAGERS,
      params: instrumentParams,
      body: maintenanceWindowBody,
      response: { 201: maintenanceWindowAnswer },
      problems: [409, 422],
      handler: async ({ params, body, actor, ctx }) => {
        ctx.status = 201;
        ctx.body = await blockInstrument(deps, actor, params.code, body);
      },
    }),
    route<Record<string, never>, z.infer<typeof myBookingsQuery>>({
      method: 'get',
      path: '/bookings/mine',
      summary: "The caller's own bookings, latest start first, keyset-paged",
      tag: TAG,
      roles: BOOKERS,
      query: myBookingsQuery,
      response: bookingPage,
      handler: async ({ query, actor, ctx }) => {
        ctx.body = await myBookings(db, actor, query);
      },
    }),
    route<Params>({
      method: 'get',
      path: '/bookings/:id',
      summary: 'A booking: its period, state, the rule it was requested under and its steps',
      tag: TAG,
      roles: READERS,
      params: bookingParams,
      response: bookingAnswer,
      handler: async ({ params, ctx }) => {
        ctx.body = await bookingView(db, params.id);
      },
    }),
    bookingAction({ name: 'approve', summary: "Approve a booking at its next tier (a named approver of that tier; never the requester)", body: approveBookingBody, update: approveBookingUpdate, action: 'booking.approve' }),
    bookingAction({ name: 'reject', summary: 'Reject a booking, with a reason (a named approver of its next tier; never the requester)', body: reasonBody, update: rejectBookingUpdate, action: 'booking.reject' }),
    bookingAction({ name: 'withdraw', summary: 'Withdraw a booking still awaiting approval (its requester)', body: optionalReasonBody, update: withdrawBookingUpdate, action: 'booking.withdraw' }),
    bookingAction({ name: 'cancel', summary: 'Cancel an approved booking, with a reason (its requester, an approver of the instrument, QA or the lab director)', body: reasonBody, update: cancelBookingUpdate, action: 'booking.cancel' }),
    bookingAction({ name: 'check-in', summary: 'Check into an approved booking within its window (its requester, passing the gate again)', body: emptyBody, update: checkInUpdate, action: 'booking.check_in' }),
    bookingAction({ name: 'check-out', summary: 'Check out of a booking checked into (its requester); the run does it at end + grace otherwise', body: emptyBody, update: checkOutUpdate, action: 'booking.check_out' }),
  ];
}
