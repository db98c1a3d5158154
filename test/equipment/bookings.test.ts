import assert from 'node:assert/strict';
import { createHash, randomUUID } from 'node:crypto';
import { MockActivityEnvironment } from '@temporalio/testing';
import { bookingActivities } from '../../activities/booking';
import type { Mailer } from '../../activities/mailer';
import { workflowIds } from '../../common/ids';
import { authorisationStatement } from '../../common/competence';
import { assertProblem } from '../api/support';
import { startPlatform, type Platform } from '../helpers/platform';
import { makeUsers, type TestUser } from '../helpers/users';
import { waitFor } from '../helpers/wait';
import { testEnv } from '../setup/env';
import { act, equipmentUsers, inService, inSeconds, instrumentCode, mustAct, type EquipmentUsers } from './support';

const BOOK = 'instrument.book';
const SETTINGS = { approvalDeadline: '3s', checkInBefore: '2s', noShowGrace: '3s', checkOutGrace: '2s' };
const sha256 = (text: string) => createHash('sha256').update(text, 'utf8').digest('hex');

describe('equipment: bookings of an instrument', function () {
  this.timeout(180_000);
  let p: Platform;
  let u: EquipmentUsers;
  let more: Record<'tech3' | 'novice' | 'admin', TestUser>;
  const db = () => testEnv().db;

  before(async () => {
    p = await startPlatform({ apiConfig: { bookings: SETTINGS } });
    u = await equipmentUsers();
    more = await makeUsers({ tech3: ['lab_technician'], novice: ['lab_technician'], admin: ['admin', 'lab_technician'] });
    // Booking needs an authorisation to operate the instrument (17025 6.2.6); the novice holds none.
    const set = await p.api('PUT', `/api/v1/gate/activities/${BOOK}/requirements`, { key: u.qa.apiKey, body: { competency: false, authorisation: true } });
    assert.equal(set.status, 200, JSON.stringify(set.body));
    for (const who of [u.tech, u.tech2, more.tech3, more.admin, u.director, u.qa]) await authorise(who, '*');
  });
  after(async () => {
    await db()('gate_activity_requirements').where({ activity: BOOK }).delete();
    await p.stop();
  });

  async function authorise(who: TestUser, scope: string) {
    const by = who === u.qa ? u.director : u.qa;
    const validFrom = new Date(Date.now() - 1000).toISOString();
    const contentHash = sha256(authorisationStatement({ username: who.username, activity: BOOK, scope, validFrom }));
    const res = await p.api('POST', '/api/v1/authorisations', {
      key: by.apiKey,
      body: { username: who.username, activity: BOOK, scope, validFrom, signature: { password: by.password, meaning: 'authorisation', contentHash } },
    });
    assert.equal(res.status, 201, JSON.stringify(res.body));
    return res.body.id as string;
  }

  const book = (who: TestUser, code: string, start: string, end: string) =>
    p.api('POST', `/api/v1/instruments/${code}/bookings`, { key: who.apiKey, body: { start, end, purpose: 'Method validation run' } });
  const bookAct = (who: TestUser, id: string, action: string, body: unknown = {}) => p.api('POST', `/api/v1/bookings/${id}/${action}`, { key: who.apiKey, body });
  const row = (id: string) => db()('instrument_reservations').where({ id }).first();
  const stateIs = (id: string, state: string, timeoutMs = 30_000) =>
    waitFor(async () => ((await row(id))?.state === state ? true : null), `booking ${id} ${state}`, timeoutMs);
  const stepOf = (id: string, kind: string) => waitFor(() => db()('instrument_booking_steps').where({ reservation_id: id, kind }).first(), `booking ${id} step ${kind}`, 60_000);
  async function mustBook(who: TestUser, code: string, start: string, end: string) {
    const res = await book(who, code, start, end);
    assert.equal(res.status, 202, JSON.stringify(res.body));
    await stepOf(res.body.id, 'requested');
    return res.body.id as string;
  }
  const rule = (code: string, body: unknown) => p.api('PUT', `/api/v1/instruments/${code}/booking-rule`, { key: u.qa.apiKey, body });

  it('refuses an overlap in the database (409 naming the clash), an unusable instrument (409 naming why) and an unauthorised person (403), writing nothing', async () => {
    const code = instrumentCode();
    await inService(p, u, code, inSeconds(3600));
    const firstEnd = inSeconds(1200);
    const first = await mustBook(u.tech, code, inSeconds(600), firstEnd);
    await stateIs(first, 'approved');

    const clash = await book(u.tech2, code, inSeconds(900), inSeconds(1500));
    assertProblem(clash, 409, 'booking-overlap');
    assert.match(clash.body.detail, new RegExp(first));
    assert.equal(clash.body.overlapping[0].id, first);
    // Half-open periods: the next booking may start where this one ends.
    const adjacent = await book(u.tech2, code, firstEnd, inSeconds(1800));
    assert.equal(adjacent.status, 202, JSON.stringify(adjacent.body));

    // The constraint, not the code: a plain insert that overlaps is refused by PostgreSQL.
    const instrument = await db()('instruments').where({ code }).first('id');
    await assert.rejects(
      db()('instrument_reservations').insert({ instrument_id: instrument.id, kind: 'booking', period: `[${inSeconds(700)},${inSeconds(800)})`, state: 'requested', requester_id: u.tech.actor.userId }),
      /instrument_reservations_no_overlap/,
    );

    const novice = await book(more.novice, code, inSeconds(3000), inSeconds(3100));
    assertProblem(novice, 403, 'gate-refused');
    assert.deepEqual(novice.body.missing.map((m: { kind: string }) => m.kind), ['authorisation']);
    assert.equal((await db()('instrument_reservations').where({ requester_id: more.novice.actor.userId })).length, 0);

    await mustAct(p, u.tech, code, 'defects', { description: 'Lamp failure' });
    const down = await book(u.tech2, code, inSeconds(4000), inSeconds(4100));
    assertProblem(down, 409, 'instrument-not-usable');
    assert.match(down.body.detail, /defect/);
    assert.deepEqual(down.body.reasons, ['defect']);

    assertProblem(await book(u.tech, code, inSeconds(200), inSeconds(100)), 422, 'invalid-period');
    assertProblem(await p.api('POST', `/api/v1/instruments/${code}/bookings`, { key: u.tech.apiKey, body: { start: 'soon' } }), 400, 'validation');
    assertProblem(await book(u.tech, 'NO-SUCH-EQ', inSeconds(100), inSeconds(200)), 404, 'not-found');
  });

  it('a single approver who is not the requester approves; check-in only within its window; checked out automatically at end + grace', async () => {
    const code = instrumentCode();
    await inService(p, u, code, inSeconds(3600));
    assertProblem(await rule(code, { rule: 'single', tiers: [] }), 422, 'invalid-booking-rule');
    assertProblem(await rule(code, { rule: 'single', tiers: [['nobody.here']] }), 422, 'invalid-approver');
    const set = await rule(code, { rule: 'single', tiers: [[u.tech2.username, u.tech.username]] });
    assert.equal(set.status, 200, JSON.stringify(set.body));

    // Starts far enough ahead that the early check-in below comes before its window on a slow machine.
    const id = await mustBook(u.tech, code, inSeconds(20), inSeconds(24));
    assertProblem(await bookAct(u.tech, id, 'approve'), 403, 'forbidden');
    assertProblem(await bookAct(more.admin, id, 'approve'), 403, 'forbidden');
    assertProblem(await bookAct(u.tech, id, 'check-in'), 409, 'wrong-stage');
    const approved = await bookAct(u.tech2, id, 'approve', { comment: 'ok' });
    assert.equal(approved.status, 200, JSON.stringify(approved.body));
    assert.equal(approved.body.state, 'approved');
    // An escalation step may come between them when the approval arrives after its 3 s deadline.
    assert.deepEqual(
      approved.body.steps.filter((s: { kind: string }) => s.kind !== 'escalated').map((s: { kind: string; by: string | null }) => [s.kind, s.by]),
      [
        ['requested', u.tech.username],
        ['approved', u.tech2.username],
      ],
    );

    const early = await bookAct(u.tech, id, 'check-in');
    assertProblem(early, 409, 'wrong-stage');
    assert.match(early.body.detail, /checked into from/);
    assertProblem(await bookAct(u.tech2, id, 'check-in'), 403, 'forbidden');
    const checkedIn = await waitFor(async () => {
      const res = await bookAct(u.tech, id, 'check-in');
      return res.status === 200 ? res : null;
    }, 'inside the check-in window', 40_000, 250);
    assert.equal(checkedIn.body.state, 'checked_in');

    await stateIs(id, 'completed', 60_000);
    const done = await p.api('GET', `/api/v1/bookings/${id}`, { key: u.tech.apiKey });
    const completed = done.body.steps.find((s: { kind: string }) => s.kind === 'completed');
    assert.equal(completed.by, null);
    // Not before end + grace, as PostgreSQL's clock saw it.
    assert.ok(Date.parse(completed.at) >= Date.parse(done.body.end) + 2000, `${completed.at} vs ${done.body.end}`);
    assertProblem(await bookAct(u.tech, id, 'check-out'), 409, 'booking-ended');
  });

  it('tiered: the first tier before the second; an approval past its deadline is escalated to the approvers and the lab director', async () => {
    const code = instrumentCode();
    await inService(p, u, code, inSeconds(3600));
    assert.equal((await rule(code, { rule: 'tiered', tiers: [[u.tech2.username], [more.tech3.username]] })).status, 200);
    const id = await mustBook(u.tech, code, inSeconds(600), inSeconds(900));
    const outOfOrder = await bookAct(more.tech3, id, 'approve');
    assertProblem(outOfOrder, 409, 'wrong-stage');
    assert.match(outOfOrder.body.detail, /tier 1/);

    const escalated = await stepOf(id, 'escalated');
    assert.equal(escalated.details.priority, 'normal');
    const notice = await waitFor(() => db()('notices').where({ subject_type: 'booking', subject_id: id, kind: 'booking.approval_overdue' }).first(), 'the escalation notice');
    const told = await db()('notice_recipients').where({ notice_id: notice.id }).pluck('user_id');
    assert.ok(told.includes(u.tech2.actor.userId) && told.includes(u.director.actor.userId));
    assert.ok(!told.includes(more.tech3.actor.userId));

    const first = await bookAct(u.tech2, id, 'approve');
    assert.equal(first.status, 200, JSON.stringify(first.body));
    assert.equal(first.body.state, 'requested');
    assertProblem(await bookAct(u.tech2, id, 'approve'), 403, 'forbidden');
    const second = await bookAct(more.tech3, id, 'approve');
    assert.equal(second.status, 200, JSON.stringify(second.body));
    assert.equal(second.body.state, 'approved');
    assert.deepEqual(second.body.steps.filter((s: { kind: string }) => s.kind === 'approved').map((s: { tier: number; by: string }) => [s.tier, s.by]), [
      [1, u.tech2.username],
      [2, more.tech3.username],
    ]);
    const cancelled = await bookAct(u.tech, id, 'cancel', { reason: 'Run postponed' });
    assert.equal(cancelled.body.state, 'cancelled');
    // Its period is free again.
    await mustBook(u.tech2, code, inSeconds(600), inSeconds(900));
  });

  it('marks a booking not checked into a no-show at start + grace, and refuses check-in to someone whose authorisation was revoked', async () => {
    const code = instrumentCode();
    await inService(p, u, code, inSeconds(3600));
    const id = await mustBook(u.tech, code, inSeconds(10), inSeconds(35));
    await stateIs(id, 'approved');
    await stateIs(id, 'no_show', 60_000);
    const noShow = await db()('instrument_booking_steps').where({ reservation_id: id, kind: 'no_show' }).first();
    const start = Date.parse((await p.api('GET', `/api/v1/bookings/${id}`, { key: u.tech.apiKey })).body.start);
    assert.ok(noShow.occurred_at.getTime() >= start + 3000);
    assertProblem(await bookAct(u.tech, id, 'check-in'), 409, 'booking-ended');

    // tech3 books (authorised for every instrument), then loses the authorisation: refused at check-in, nothing recorded.
    const auths = await db()('authorisations').where({ user_id: more.tech3.actor.userId, activity: BOOK }).whereNull('ended_at').pluck('id');
    const later = await mustBook(more.tech3, code, inSeconds(40), inSeconds(60));
    await stateIs(later, 'approved');
    for (const a of auths) {
      const revoked = await p.api('POST', `/api/v1/authorisations/${a}/revoke`, { key: u.qa.apiKey, body: { reason: 'left the bench' } });
      assert.equal(revoked.status, 200, JSON.stringify(revoked.body));
    }
    const refused = await waitFor(async () => {
      const res = await bookAct(more.tech3, later, 'check-in');
      return res.status === 409 && /checked into from/.test(res.body.detail) ? null : res;
    }, 'the check-in window', 60_000, 500);
    assertProblem(refused, 403, 'gate-refused');
    assert.equal((await row(later)).state, 'approved');
  });

  it('bumps holding bookings when the instrument goes out of service or a maintenance window takes their period; the runs follow', async () => {
    const code = instrumentCode();
    await inService(p, u, code, inSeconds(3600));
    const a = await mustBook(u.tech, code, inSeconds(600), inSeconds(700));
    const b = await mustBook(u.tech2, code, inSeconds(800), inSeconds(900));
    await stateIs(a, 'approved');
    const blocked = await p.api('POST', `/api/v1/instruments/${code}/maintenance-windows`, {
      key: u.qa.apiKey,
      body: { start: inSeconds(550), end: inSeconds(750), reason: 'Pump seal replacement' },
    });
    assert.equal(blocked.status, 201, JSON.stringify(blocked.body));
    assert.deepEqual(blocked.body.bumped, [`booking:${a}`]);
    await stepOf(a, 'bumped');
    assertProblem(await book(u.tech, code, inSeconds(600), inSeconds(650)), 409, 'booking-overlap');
    assertProblem(await bookAct(u.tech, a, 'check-in'), 409, 'booking-ended');

    await mustAct(p, u.tech, code, 'maintenance/start', { description: 'Unplanned: leak' });
    await stateIs(b, 'bumped');
    await stepOf(b, 'bumped');
    const view = await p.api('GET', `/api/v1/bookings/${b}`, { key: u.tech2.apiKey });
    assert.match(view.body.endedBecause, /maintenance/);
    const handle = testEnv().client.workflow.getHandle(`booking:${b}`);
    assert.equal((await handle.result()).state, 'bumped');
  });

  it('lists an instrument’s bookings and my bookings a keyset page at a time', async () => {
    const code = instrumentCode();
    await inService(p, u, code, inSeconds(3600));
    const ids = [];
    for (let i = 0; i < 3; i += 1) ids.push(await mustBook(u.director, code, inSeconds(1000 + i * 100), inSeconds(1050 + i * 100)));
    const first = await p.api('GET', `/api/v1/instruments/${code}/bookings?limit=2`, { key: u.tech.apiKey });
    assert.equal(first.status, 200, JSON.stringify(first.body));
    assert.deepEqual(first.body.items.map((b: { id: string }) => b.id), ids.slice(0, 2));
    const second = await p.api('GET', `/api/v1/instruments/${code}/bookings?limit=2&cursor=${first.body.nextCursor}`, { key: u.tech.apiKey });
    assert.deepEqual(second.body.items.map((b: { id: string }) => b.id), ids.slice(2));
    assert.equal(second.body.nextCursor, null);
    const mine = await p.api('GET', '/api/v1/bookings/mine?limit=1', { key: u.director.apiKey });
    assert.equal(mine.status, 200);
    assert.equal(mine.body.items[0].requester, u.director.username);
    assert.ok(mine.body.nextCursor);
    assertProblem(await p.api('GET', `/api/v1/bookings/mine?cursor=${first.body.nextCursor}`, { key: u.director.apiKey }), 400, 'validation');
    assertProblem(await act(p, u.doc, code, 'bookings', { start: inSeconds(10), end: inSeconds(20) }), 403, 'forbidden');
  });
  it('a step that meets its booking before the API committed it is retried, not refused as forged; a step on a booking that moved on is refused', async () => {
    const activities = bookingActivities({ db: db(), mailer: {} as Mailer, publicUrl: 'http://labflow.test', mailDomain: 'lab.test' });
    const code = instrumentCode();
    await inService(p, u, code, inSeconds(3600));
    const instrument = await db()('instruments').where({ code }).first('id');
    const stepOn = (bookingId: string, workflowId: string) => ({
      ref: { workflowId, bookingId, instrumentId: instrument.id, code, requesterId: u.tech.actor.userId, tiers: [] },
      from: 'requested' as const,
      to: 'requested' as const,
      proof: { action: 'booking.request' as const, grant: randomUUID(), actor: u.tech.actor, request: {} },
    });
    const refusedEvents = (workflowId: string) =>
      db()('audit_events').where({ action: 'security.grant_refused' }).whereRaw(`details->>'workflowId' = ?`, [workflowId]).count('* as n').first();

    // The API starts the run inside the transaction that inserts the row: the first step may come before the commit.
    const early = randomUUID();
    const earlyRun = workflowIds.booking(early);
    const env = new MockActivityEnvironment({ activityId: 'booking-early', workflowExecution: { workflowId: earlyRun, runId: 'test-run' } });
    await assert.rejects(env.run(activities.recordBookingStep, stepOn(early, earlyRun)), (err: Error) => {
      assert.match(err.message, /not committed yet/);
      assert.notEqual((err as { type?: string }).type, 'GrantRefused');
      return true;
    });
    assert.equal(Number((await refusedEvents(earlyRun))?.n), 0, 'no security event for a row not yet committed');

    // A step that keeps the state (the request, a tier's approval) is refused once the booking moved on, writing nothing.
    const id = await mustBook(u.tech, code, inSeconds(600), inSeconds(700));
    await stateIs(id, 'approved');
    const run = workflowIds.booking(id);
    const steps = async () => (await db()('instrument_booking_steps').where({ reservation_id: id })).length;
    const before = await steps();
    const moved = new MockActivityEnvironment({ activityId: 'booking-moved', workflowExecution: { workflowId: run, runId: 'test-run' } });
    await assert.rejects(moved.run(activities.recordBookingStep, stepOn(id, run)), /no longer requested/);
    assert.equal(await steps(), before);
  });
});
