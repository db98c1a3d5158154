import type { Knex } from 'knex';
import type { Db } from './knex';

/**
 * Instrument reservations (db/migrations/20261206174100_instrument_reservations.ts): the database refuses two
 * holding reservations of one instrument whose periods overlap; these functions turn that refusal into an answer.
 */

const EXCLUSION_VIOLATION = '23P01';
const isOverlap = (err: unknown) => (err as { code?: string; constraint?: string }).code === EXCLUSION_VIOLATION;

export interface Period {
  start: Date;
  end: Date;
}

/** A period as PostgreSQL's half-open range: it ends where the next may start. */
const range = (p: Period) => `[${p.start.toISOString()},${p.end.toISOString()})`;

export interface HoldingReservation {
  id: string;
  kind: 'booking' | 'maintenance';
  state: string;
  start: string;
  end: string;
}

/** The holding reservations of an instrument overlapping a period (what an overlap refusal names). */
export async function overlapping(db: Db | Knex.Transaction, instrumentId: string, period: Period): Promise<HoldingReservation[]> {
  const rows = await db('instrument_reservations')
    .where({ instrument_id: instrumentId })
    .whereIn('state', ['requested', 'approved', 'checked_in', 'planned', 'under_way'])
    .whereRaw('period && ?::tstzrange', [range(period)])
    .orderByRaw('lower(period)')
    .select('id', 'kind', 'state', db.raw('lower(period) as start'), db.raw('upper(period) as "end"'));
  return rows.map((r: { id: string; kind: 'booking' | 'maintenance'; state: string; start: Date; end: Date }) => ({
    id: r.id,
    kind: r.kind,
    state: r.state,
    start: r.start.toISOString(),
    end: r.end.toISOString(),
  }));
}

export type ReserveOutcome = { ok: true; id: string } | { ok: false; overlapping: HoldingReservation[] };

/**
 * Requests a booking of the instrument for the period; the exclusion constraint, not this code, decides whether
 * it overlaps a holding booking or a blocking maintenance window. Idempotent by workflow ID.
 */
export async function reserveBooking(
  db: Db,
  b: { workflowId: string; instrumentId: string; requesterId: string; period: Period; purpose?: string },
): Promise<ReserveOutcome> {
  const existing = await db('instrument_reservations').where({ workflow_id: b.workflowId }).first('id');
  if (existing) return { ok: true, id: existing.id };
  try {
    const [row] = await db('instrument_reservations')
      .insert({
        instrument_id: b.instrumentId,
        kind: 'booking',
        workflow_id: b.workflowId,
        period: range(b.period),
        state: 'requested',
        requester_id: b.requesterId,
        purpose: b.purpose ?? null,
      })
      .returning('id');
    return { ok: true, id: row.id };
  } catch (err) {
    if (!isOverlap(err)) throw err;
    return { ok: false, overlapping: await overlapping(db, b.instrumentId, b.period) };
  }
}

/** Moves a booking from one state to another; false when it was no longer in `from` (someone else moved it). */
export async function moveBooking(db: Db | Knex.Transaction, id: string, from: readonly string[], to: string, because?: string): Promise<boolean> {
  const moved = await db('instrument_reservations')
    .where({ id, kind: 'booking' })
    .whereIn('state', from)
    .update({ state: to, ended_because: because ?? null, updated_at: db.fn.now() });
  return moved === 1;
}

/**
 * Blocks the instrument for maintenance over a period: holding bookings that overlap it are bumped first, in the
 * same transaction, so the window always goes in; answers the window and the bumped bookings' workflow IDs (whose
 * runs are told). A window overlapping another blocking window is refused by the database (ok: false).
 */
export async function blockForMaintenance(
  db: Db,
  m: { instrumentId: string; period: Period; reason: string },
  /** Written in the same transaction once the window is in (the audit event of who blocked it). */
  within?: (trx: Knex.Transaction, window: { id: string; bumped: string[] }) => Promise<unknown>,
): Promise<{ ok: true; id: string; bumped: string[] } | { ok: false; overlapping: HoldingReservation[] }> {
  try {
    return await db.transaction(async (trx) => {
      const bumped: string[] = await trx('instrument_reservations')
        .where({ instrument_id: m.instrumentId, kind: 'booking' })
        .whereIn('state', ['requested', 'approved', 'checked_in'])
        .whereRaw('period && ?::tstzrange', [range(m.period)])
        .update({ state: 'bumped', ended_because: `maintenance: ${m.reason}`.slice(0, 500), updated_at: trx.fn.now() })
        .returning('workflow_id')
        .then((rows: { workflow_id: string }[]) => rows.map((r) => r.workflow_id));
      const [row] = await trx('instrument_reservations')
        .insert({ instrument_id: m.instrumentId, kind: 'maintenance', period: range(m.period), state: 'planned', purpose: m.reason.slice(0, 500) })
        .returning('id');
      await within?.(trx, { id: row.id as string, bumped });
      return { ok: true as const, id: row.id as string, bumped };
    });
  } catch (err) {
    if (!isOverlap(err)) throw err;
    return { ok: false, overlapping: await overlapping(db, m.instrumentId, m.period) };
  }
}

/**
 * The instrument went out of service (or was retired): every holding booking not yet over is bumped in the
 * caller's transaction, with why. Answers the bumped bookings' workflow IDs, whose runs are told.
 */
export async function bumpHoldingBookings(trx: Knex.Transaction, instrumentId: string, because: string): Promise<string[]> {
  const rows: { workflow_id: string }[] = await trx('instrument_reservations')
    .where({ instrument_id: instrumentId, kind: 'booking' })
    .whereIn('state', ['requested', 'approved', 'checked_in'])
    .whereRaw('upper(period) > now()')
    .update({ state: 'bumped', ended_because: because.slice(0, 500), updated_at: trx.fn.now() })
    .returning('workflow_id');
  return rows.map((r) => r.workflow_id);
}
