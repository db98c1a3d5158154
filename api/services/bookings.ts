import { randomUUID } from 'node:crypto';
import type { z } from 'zod';
import { BOOKERS, bookingBumpedSignal, boundBookingArgs, DEFAULT_BOOKING_SETTINGS, ENDED_BOOKING_STATES, type ApprovalRule, type BookingInput, type BookingStateName } from '../../common/booking';
import { workflowIds } from '../../common/ids';
import type { Actor } from '../../common/roles';
import { EntityId, EntityType, Stage } from '../../common/search-attributes';
import { appendAudit } from '../../db/audit';
import { instrumentUsability, unusableWhy, type InstrumentRow } from '../../db/equipment';
import { INSTRUMENT_BOOKING } from '../../db/gate';
import { afterRow, encodeCursor } from '../../db/keyset';
import { blockForMaintenance, overlapping, type HoldingReservation } from '../../db/reservations';
import type { bookingWorkflow } from '../../workflows';
import type { ApiDeps } from '../deps';
import { problems } from '../problem';
import type { bookingRuleBody, requestBookingBody } from '../schemas/booking';
import { grantAction } from '../signing';
import { cursorOf, loadInstrument } from './equipment';
import { requireGate } from './training';

type Db = ApiDeps['db'];
const iso = (d: Date | string | null | undefined) => (d ? new Date(d).toISOString() : null);
const EXCLUSION_VIOLATION = '23P01';
const range = (start: string, end: string) => `[${start},${end})`;

/** The overlap refusal, naming what the period clashes with. */
const overlapProblem = (code: string, clashes: HoldingReservation[]) =>
  problems.conflict(
    'booking-overlap',
    `instrument ${code} is already held over that period: ${clashes.map((c) => `${c.kind} ${c.id} (${c.state}) ${c.start} – ${c.end}`).join('; ') || 'by a reservation that has just been made'}`,
    { overlapping: clashes },
  );

/** Why a period cannot be booked, or null. */
function periodProblem(start: string, end: string, now: number): string | null {
  if (Date.parse(end) <= Date.parse(start)) return 'the booking ends before (or as) it starts';
  if (Date.parse(end) <= now) return 'the booking would be over already';
  return null;
}

/** The instrument's approval rule; an instrument without one is booked automatically. */
export async function bookingRule(db: Db, instrument: Pick<InstrumentRow, 'id' | 'code'>): Promise<{ instrument: string; rule: ApprovalRule; tiers: string[][] }> {
  const row = await db('instrument_booking_rules').where({ instrument_id: instrument.id }).first('rule', 'tiers');
  return { instrument: instrument.code, rule: (row?.rule as ApprovalRule) ?? 'automatic', tiers: (row?.tiers as string[][]) ?? [] };
}

/**
 * Sets an instrument's approval rule: automatic (no tiers), single (one tier: any one of its people approves) or
 * tiered (two tiers, the first before the second). Every approver is an active member of the lab. Bookings already
 * requested keep the rule they were requested under.
 */
export async function setBookingRule(db: Db, actor: Actor, code: string, body: z.infer<typeof bookingRuleBody>) {
  const instrument = await loadInstrument(db, code);
  const need = { automatic: 0, single: 1, tiered: 2 }[body.rule];
  if (body.tiers.length !== need) {
    throw problems.unprocessable('invalid-booking-rule', `a ${body.rule} rule names ${need} tier${need === 1 ? '' : 's'} of approvers, not ${body.tiers.length}`);
  }
  const named = [...new Set(body.tiers.flat())];
  const found = named.length ? await db('users').whereIn('username', named).where({ active: true }).whereRaw('roles && ?::text[]', [[...BOOKERS]]).pluck('username') : [];
  const unknown = named.filter((n) => !found.includes(n));
  if (unknown.length) throw problems.unprocessable('invalid-approver', `not active members of the lab who may approve bookings: ${unknown.join(', ')}`);
  await db.transaction(async (trx) => {
    await trx('instrument_booking_rules')
      .insert({ instrument_id: instrument.id, rule: body.rule, tiers: JSON.stringify(body.tiers), updated_by: actor.userId })
      .onConflict('instrument_id')
      .merge({ rule: body.rule, tiers: JSON.stringify(body.tiers), updated_by: actor.userId, updated_at: trx.fn.now() });
    await appendAudit(trx, {
      actorId: actor.userId,
      actor: actor.username,
      action: 'instrument.booking_rule_set',
      entityType: 'instrument',
      entityId: code,
      details: { rule: body.rule, tiers: body.tiers },
    });
  });
  return bookingRule(db, instrument);
}

/**
 * A booking request: the gate (403 naming what is missing), the instrument usable now (409 naming why not), then
 * the reservation row and its run `booking:<id>` in one transaction; PostgreSQL's exclusion constraint refuses an
 * overlap (409 naming the clash) and nothing is started.
 */
export async function requestBooking(deps: Pick<ApiDeps, 'db' | 'temporal' | 'config' | 'log'>, actor: Actor, code: string, body: z.infer<typeof requestBookingBody>) {
  const { db } = deps;
  const instrument = await loadInstrument(db, code);
  const start = new Date(Date.parse(body.start)).toISOString();
  const end = new Date(Date.parse(body.end)).toISOString();
  const problem = periodProblem(start, end, Date.now());
  if (problem) throw problems.unprocessable('invalid-period', problem);
  await requireGate(deps, actor, { activity: INSTRUMENT_BOOKING, roles: BOOKERS, scope: code }, { entityType: 'instrument', entityId: code });
  const usability = await instrumentUsability(db, code);
  if (!usability?.usable) {
    throw problems.conflict('instrument-not-usable', `instrument ${code} cannot be booked: it is ${usability ? unusableWhy(usability) : 'not registered'}`, {
      state: usability?.state ?? null,
      reasons: usability?.reasons ?? [],
    });
  }
  const { rule, tiers } = await bookingRule(db, instrument);
  const bookingId = randomUUID();
  const workflowId = workflowIds.booking(bookingId);
  const grant = await grantAction(deps, actor, { workflowId, action: 'booking.request', args: boundBookingArgs('booking.request', { code, start, end }) });
  const input: BookingInput = {
    bookingId,
    instrumentId: instrument.id,
    code,
    requester: { userId: actor.userId, username: actor.username },
    start,
    end,
    rule,
    tiers,
    settings: deps.config.bookings ?? DEFAULT_BOOKING_SETTINGS,
    request: { actor, grant },
  };
  try {
    await db.transaction(async (trx) => {
      await trx('instrument_reservations').insert({
        id: bookingId,
        instrument_id: instrument.id,
        kind: 'booking',
        workflow_id: workflowId,
        period: range(start, end),
        state: 'requested',
        requester_id: actor.userId,
        purpose: body.purpose ?? null,
      });
      await deps.temporal.workflow.start<typeof bookingWorkflow>('bookingWorkflow', {
        workflowId,
        taskQueue: deps.config.taskQueue,
        args: [input],
        workflowIdConflictPolicy: 'FAIL',
        workflowIdReusePolicy: 'REJECT_DUPLICATE',
        typedSearchAttributes: [
          { key: EntityType, value: 'booking' },
          { key: EntityId, value: bookingId },
          { key: Stage, value: 'requested' },
        ],
      });
    });
  } catch (err) {
    if ((err as { code?: string }).code === EXCLUSION_VIOLATION) throw overlapProblem(code, await overlapping(db, instrument.id, { start: new Date(start), end: new Date(end) }));
    throw err;
  }
  return { id: bookingId, workflowId, state: 'requested' as const, instrument: code };
}

export interface BookingRow {
  id: string;
  workflow_id: string;
  instrument_id: string;
  code: string;
  requester: string;
  requester_id: string;
  state: BookingStateName;
  start: Date;
  end: Date;
  purpose: string | null;
  ended_because: string | null;
}

const bookings = (db: Db) =>
  db('instrument_reservations as r')
    .join('instruments as i', 'i.id', 'r.instrument_id')
    .join('users as u', 'u.id', 'r.requester_id')
    .where('r.kind', 'booking')
    .select(
      'r.id',
      'r.workflow_id',
      'r.instrument_id',
      'i.code',
      'u.username as requester',
      'r.requester_id',
      'r.state',
      db.raw('lower(r.period) as start'),
      db.raw('upper(r.period) as "end"'),
      'r.purpose',
      'r.ended_because',
    );

const rowOf = (r: BookingRow) => ({
  id: r.id,
  workflowId: r.workflow_id,
  instrument: r.code,
  requester: r.requester,
  start: iso(r.start)!,
  end: iso(r.end)!,
  state: r.state,
  purpose: r.purpose,
  endedBecause: r.ended_because,
});

export async function loadBooking(db: Db, id: string): Promise<BookingRow> {
  const row = await bookings(db).where('r.id', id).first();
  if (!row) throw problems.notFound(`booking ${id}`);
  return row;
}

/** A booking as PostgreSQL holds it: the reservation, the rule it was requested under, and its steps. */
export async function bookingView(db: Db, id: string) {
  const row = await loadBooking(db, id);
  const steps = await db('instrument_booking_steps as s')
    .leftJoin('users as u', 'u.id', 's.actor_id')
    .where('s.reservation_id', id)
    .orderBy('s.occurred_at')
    .select('s.kind', 's.tier', 's.details', 's.occurred_at', 'u.username');
  const rule = await bookingRule(db, { id: row.instrument_id, code: row.code });
  return {
    ...rowOf(row),
    ...rule,
    steps: steps.map((s) => ({ kind: s.kind, tier: s.tier, by: s.username ?? null, at: iso(s.occurred_at)!, details: s.details })),
  };
}

async function paged(query: ReturnType<typeof bookings>, sort: string, limit: number) {
  const rows: BookingRow[] = await query.limit(limit + 1);
  const more = rows.length > limit;
  const items = rows.slice(0, limit);
  const last = items.at(-1);
  return { items: items.map(rowOf), nextCursor: more && last ? encodeCursor({ sort, id: last.id }) : null };
}

const KEYS = ['lower(r.period)', 'r.id'];

/** An instrument's bookings ending after `from` (default now), soonest first, a keyset page at a time. */
export async function instrumentBookings(db: Db, code: string, q: { from?: string; limit: number; cursor?: string }) {
  const instrument = await loadInstrument(db, code);
  const after = cursorOf(q.cursor, 'instrument');
  const query = bookings(db)
    .where('r.instrument_id', instrument.id)
    .whereRaw('upper(r.period) > coalesce(?::timestamptz, now())', [q.from ?? null])
    .orderByRaw('lower(r.period), r.id');
  if (after) query.whereRaw(afterRow(KEYS, false, 'instrument_reservations', 'r'), [after]);
  return paged(query, 'instrument', q.limit);
}

/** The person's own bookings, latest start first, a keyset page at a time. */
export async function myBookings(db: Db, actor: Actor, q: { state?: string; limit: number; cursor?: string }) {
  const after = cursorOf(q.cursor, 'mine');
  const query = bookings(db).where('r.requester_id', actor.userId).orderByRaw('lower(r.period) desc, r.id desc');
  if (q.state) query.where('r.state', q.state);
  if (after) query.whereRaw(afterRow(KEYS, true, 'instrument_reservations', 'r'), [after]);
  return paged(query, 'mine', q.limit);
}

/** Whether a booking has ended (nothing more can be done to it). */
export const bookingEnded = (row: Pick<BookingRow, 'state'>) => ENDED_BOOKING_STATES.includes(row.state);

/**
 * Blocks the instrument for maintenance over a period: the holding bookings it overlaps are bumped in the same
 * transaction (db/reservations.ts) and their runs told; a window overlapping another is refused (409).
 */
export async function blockInstrument(deps: Pick<ApiDeps, 'db' | 'temporal' | 'log'>, actor: Actor, code: string, body: { start: string; end: string; reason: string }) {
  const instrument = await loadInstrument(deps.db, code);
  if (instrument.state === 'retired') throw problems.conflict('instrument-retired', `instrument ${code} is retired; nothing more can be done`);
  const start = new Date(Date.parse(body.start)).toISOString();
  const end = new Date(Date.parse(body.end)).toISOString();
  const problem = periodProblem(start, end, Date.now());
  if (problem) throw problems.unprocessable('invalid-period', problem);
  const done = await blockForMaintenance(
    deps.db,
    { instrumentId: instrument.id, period: { start: new Date(start), end: new Date(end) }, reason: body.reason },
    (trx, window) =>
      appendAudit(trx, {
        actorId: actor.userId,
        actor: actor.username,
        action: 'instrument.maintenance_window',
        entityType: 'instrument',
        entityId: code,
        details: { windowId: window.id, start, end, reason: body.reason, bumpedBookings: window.bumped },
      }),
  );
  if (!done.ok) throw overlapProblem(code, done.overlapping);
  await tellBumped(deps, done.bumped);
  return { id: done.id, instrument: code, start, end, bumped: done.bumped };
}

/** The runs of bumped bookings hear of it; each checks PostgreSQL before it follows. A run already gone is no matter. */
async function tellBumped(deps: Pick<ApiDeps, 'temporal' | 'log'>, workflowIds: string[]): Promise<void> {
  for (const id of workflowIds) {
    await deps.temporal.workflow
      .getHandle(id)
      .signal(bookingBumpedSignal)
      .catch((err: unknown) => deps.log.warn({ booking: id, error: String(err) }, 'booking not told of its bump'));
  }
}
