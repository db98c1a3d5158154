import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { blockForMaintenance, moveBooking, reserveBooking } from '../../db/reservations';
import { makeUsers, type TestUser } from '../helpers/users';
import { testEnv } from '../setup/env';

const HOUR = 3_600_000;
const at = (h: number) => new Date(Date.UTC(2031, 0, 6, 8) + h * HOUR);
const period = (from: number, to: number) => ({ start: at(from), end: at(to) });

describe('instrument reservations: overlaps are refused by the database', () => {
  let u: Record<'tech' | 'other', TestUser>;
  let instrumentId: string;
  const db = () => testEnv().db;
  const booking = (from: number, to: number, who: TestUser = u.tech) =>
    reserveBooking(db(), { workflowId: `booking:test-${randomBytes(6).toString('hex')}`, instrumentId, requesterId: who.actor.userId, period: period(from, to) });

  before(async () => {
    u = await makeUsers({ tech: ['lab_technician'], other: ['lab_technician'] });
    const code = `RSV-${randomBytes(4).toString('hex').toUpperCase()}`;
    [{ id: instrumentId }] = await db()('instruments')
      .insert({
        code,
        workflow_id: `instrument:${code}`,
        name: 'Plate reader',
        manufacturer: 'Acme',
        model: 'PR-1',
        serial_number: 'SN-1',
        location: 'Lab 2',
        reminder_before: ['30d'],
        registered_by: u.tech.actor.userId,
      })
      .returning('id');
  });

  it('runs with btree_gist installed by the migration role', async () => {
    const ext = await db().raw(`select extname from pg_extension where extname = 'btree_gist'`);
    assert.equal(ext.rows.length, 1);
  });

  it('refuses an overlapping booking by the exclusion constraint, even written straight to the table, and names what it overlaps', async () => {
    const first = await booking(0, 2);
    assert.ok(first.ok);
    const overlap = await booking(1, 3, u.other);
    assert.ok(!overlap.ok);
    assert.deepEqual(overlap.overlapping.map((r) => r.id), [first.id]);
    // Not only the code: a plain insert is refused by PostgreSQL with an exclusion violation.
    await assert.rejects(
      db()('instrument_reservations').insert({ instrument_id: instrumentId, kind: 'booking', period: `[${at(1).toISOString()},${at(3).toISOString()})`, state: 'approved', requester_id: u.other.actor.userId }),
      (err: { code?: string; constraint?: string }) => err.code === '23P01' && err.constraint === 'instrument_reservations_no_overlap',
    );
    // Periods are half-open: one may start where the other ends.
    assert.ok((await booking(2, 3)).ok);
  });

  it('frees the period when a booking ends, and lets nothing in while it holds', async () => {
    const held = await booking(10, 11);
    assert.ok(held.ok);
    assert.ok(!(await booking(10, 11, u.other)).ok);
    assert.ok(await moveBooking(db(), held.id, ['requested'], 'withdrawn', 'plans changed'));
    assert.equal(await moveBooking(db(), held.id, ['requested'], 'approved'), false, 'a withdrawn booking is not moved again');
    assert.ok((await booking(10, 11, u.other)).ok);
  });

  it('bumps the bookings a blocking maintenance window overlaps, and refuses bookings inside the window', async () => {
    const a = await booking(20, 21);
    const b = await booking(22, 23, u.other);
    const outside = await booking(26, 27);
    assert.ok(a.ok && b.ok && outside.ok);
    const window = await blockForMaintenance(db(), { instrumentId, period: period(20, 24), reason: 'lamp replacement' });
    assert.ok(window.ok);
    const states = await db()('instrument_reservations').whereIn('id', [a.id, b.id, outside.id]).orderByRaw('lower(period)').pluck('state');
    assert.deepEqual(states, ['bumped', 'bumped', 'requested']);
    const during = await booking(23, 25);
    assert.ok(!during.ok);
    assert.deepEqual(during.overlapping.map((r) => r.kind), ['maintenance']);
    const twice = await blockForMaintenance(db(), { instrumentId, period: period(21, 22), reason: 'again' });
    assert.ok(!twice.ok, 'two blocking windows may not overlap');
  });

  it('refuses an empty or backwards period', async () => {
    await assert.rejects(booking(5, 5), /empty range|isempty|check/);
    await assert.rejects(booking(6, 5), /range lower bound must be less than or equal to range upper bound/);
  });
});
