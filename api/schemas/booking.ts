import { z } from 'zod';
import { APPROVAL_RULES, BOOKING_STATES } from '../../common/booking';
import { isoDateTime, queryInt, text, username } from './common';
import { instrumentCode } from './equipment';

export const bookingParams = z.object({ id: z.uuid() });

export const bookingRuleBody = z.strictObject({
  rule: z.enum(APPROVAL_RULES),
  /** Usernames who may approve, per tier in order: none for automatic, one tier for single, two for tiered. */
  tiers: z.array(z.array(username).min(1).max(20)).max(2).default([]),
});

export const requestBookingBody = z.strictObject({ start: isoDateTime, end: isoDateTime, purpose: text(500).optional() });
export const approveBookingBody = z.strictObject({ comment: text(1000).optional() });
export const reasonBody = z.strictObject({ reason: text(1000) });
export const optionalReasonBody = z.strictObject({ reason: text(1000).optional() });
export const emptyBody = z.strictObject({}) as z.ZodType<object>;
export const maintenanceWindowBody = z.strictObject({ start: isoDateTime, end: isoDateTime, reason: text(500) });

const page = { limit: queryInt(1, 200).default(50), cursor: z.string().max(200).optional() };
export const instrumentBookingsQuery = z.object({ from: isoDateTime.optional().describe('bookings ending after this instant (default: now)'), ...page });
export const myBookingsQuery = z.object({ state: z.enum(BOOKING_STATES).optional(), ...page });

/** What the booking routes answer (route specs' `response` and the OpenAPI document). */
export const bookingRuleAnswer = z.looseObject({
  instrument: instrumentCode,
  rule: z.enum(APPROVAL_RULES),
  tiers: z.array(z.array(z.string())),
});
export const bookingRow = z.looseObject({
  id: z.string(),
  workflowId: z.string(),
  instrument: z.string(),
  requester: z.string(),
  start: z.string(),
  end: z.string(),
  state: z.enum(BOOKING_STATES),
  purpose: z.string().nullable(),
  endedBecause: z.string().nullable(),
});
export const bookingAnswer = bookingRow.extend({
  rule: z.enum(APPROVAL_RULES),
  tiers: z.array(z.array(z.string())),
  steps: z
    .array(z.looseObject({ kind: z.string(), tier: z.number().nullable(), by: z.string().nullable(), at: z.string(), details: z.looseObject({}) }))
    .describe('requested, approved (per tier), escalated, checked in… oldest first'),
});
export const bookingRequested = z.looseObject({ id: z.string(), workflowId: z.string(), state: z.literal('requested'), instrument: z.string() });
export const bookingPage = z.looseObject({ items: z.array(bookingRow), nextCursor: z.string().nullable() });
export const maintenanceWindowAnswer = z.looseObject({ id: z.string(), instrument: z.string(), start: z.string(), end: z.string(), bumped: z.array(z.string()) });
