import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import knex, { type Knex } from 'knex';
import { makeUsers, type TestUser } from '../helpers/users';
import { testEnv } from '../setup/env';
import { jobUrl, patientWithNotes, readySummary, startSummaryRig, type SummaryRig } from '../soap-summary/support';
import { addNote, createPatient, marker, minutesAgo, notesUrl, PATIENTS, patientUrl } from './support';

interface LoggedEvent {
  id: string;
  userId: string;
  username: string;
  kind: string;
  recordIds: string[];
  outcome: string;
  method: string;
  route: string;
  patients: string[];
}

/** The access events one request wrote, found by the request ID it was sent with. */
async function eventsOf(requestId: string): Promise<LoggedEvent[]> {
  const { db } = testEnv();
  const rows = await db('phi_access_events').where({ request_id: requestId }).orderBy('occurred_at');
  return Promise.all(
    rows.map(async (r) => ({
      id: r.id,
      userId: r.user_id,
      username: r.username,
      kind: r.record_kind,
      recordIds: r.record_ids,
      outcome: r.outcome,
      method: r.method,
      route: r.route,
      patients: (await db('phi_access_event_patients').where({ event_id: r.id }).pluck('patient_id')).sort(),
    })),
  );
}

const accessLogUrl = (patientId: string, query = '') => `${patientUrl(patientId)}/access-log${query}`;

describe('every read of PHI is an access event, and the privacy officer reads the log (HIPAA 164.312(b))', () => {
  let rig: SummaryRig;
  let u: Record<'officer' | 'outsider' | 'admin' | 'ops' | 'tech' | 'qa', TestUser>;
  let doc: TestUser;

  /** Sends a request under a fresh request ID and answers with the events it wrote. */
  async function call(user: TestUser, method: string, path: string, body?: unknown) {
    const requestId = `t-${randomUUID()}`;
    const res = await rig.p.api(method, path, { key: user.apiKey, body, headers: { 'x-request-id': requestId } });
    return { res, events: await eventsOf(requestId) };
  }

  /** Asserts the request answered `status` and wrote exactly one event, as expected. */
  async function expectOneEvent(
    user: TestUser,
    [method, path, body]: [string, string, unknown?],
    status: number,
    expected: Omit<LoggedEvent, 'id' | 'userId' | 'username' | 'method'>,
  ) {
    const { res, events } = await call(user, method, path, body);
    assert.equal(res.status, status, `${method} ${path}: ${JSON.stringify(res.body)}`);
    assert.equal(events.length, 1, `${method} ${path} wrote ${events.length} events`);
    const { id, ...event } = events[0];
    assert.match(id, /^[0-9a-f-]{36}$/);
    assert.deepEqual(event, {
      userId: user.actor.userId,
      username: user.username,
      method,
      ...expected,
      recordIds: [...expected.recordIds],
      patients: [...expected.patients].sort(),
    });
    return res;
  }

  before(async () => {
    rig = await startSummaryRig();
    doc = rig.doc;
    u = await makeUsers({
      officer: ['privacy_officer'],
      outsider: ['clinician'],
      admin: ['admin'],
      ops: ['it_operator'],
      tech: ['lab_technician'],
      qa: ['qa_manager'],
    });
  });
  after(() => rig.stop());

  describe('what each PHI route writes', () => {
    const family = marker('Canary');
    const given = marker('Given');
    const mrn = `MRN-${marker('x')}`;
    const noteCanary = marker('Notecanary');
    let patientId: string;
    let otherId: string;
    let noteIds: string[];

    it('registering and changing a patient each log the record shown', async () => {
      // The new patient's ID is known only from the answer, so this one is checked by hand.
      const { res, events } = await call(doc, 'POST', PATIENTS, { givenName: given, familyName: family, dateOfBirth: '1975-03-02', mrn });
      assert.equal(res.status, 201, JSON.stringify(res.body));
      patientId = res.body.id;
      assert.equal(events.length, 1);
      const { id: _id, ...event } = events[0];
      assert.deepEqual(event, {
        userId: doc.actor.userId,
        username: doc.username,
        kind: 'patient',
        recordIds: [patientId],
        outcome: 'read',
        method: 'POST',
        route: '/api/v1/patients',
        patients: [patientId],
      });
      otherId = (await createPatient(rig.p, doc, { familyName: `${family}b`, givenName: given })).id;

      await expectOneEvent(doc, ['PATCH', patientUrl(patientId), { phone: '+1 555 0100' }], 200, {
        kind: 'patient',
        recordIds: [patientId],
        outcome: 'read',
        route: '/api/v1/patients/:id',
        patients: [patientId],
      });
    });

    it('reading a patient logs the patient; a search logs one event naming every patient shown', async () => {
      await expectOneEvent(doc, ['GET', patientUrl(patientId)], 200, {
        kind: 'patient',
        recordIds: [patientId],
        outcome: 'read',
        route: '/api/v1/patients/:id',
        patients: [patientId],
      });
      const search = await expectOneEvent(doc, ['GET', `${PATIENTS}?q=${family}`], 200, {
        kind: 'patient_list',
        recordIds: [],
        outcome: 'read',
        route: '/api/v1/patients',
        patients: [patientId, otherId],
      });
      assert.equal(search.body.items.length, 2);
      // A page of one names only the patient shown.
      await expectOneEvent(doc, ['GET', `${PATIENTS}?q=${family}&limit=1`], 200, {
        kind: 'patient_list',
        recordIds: [],
        outcome: 'read',
        route: '/api/v1/patients',
        patients: [patientId],
      });
    });

    it('writing and reading notes log the notes shown', async () => {
      const { res } = await call(doc, 'POST', notesUrl(patientId), { subjective: noteCanary, plan: 'Rest', noteTime: minutesAgo(20) });
      assert.equal(res.status, 201, JSON.stringify(res.body));
      const first = res.body.id as string;
      const second = (await addNote(rig.p, doc, patientId, { noteTime: minutesAgo(10) })).id;
      noteIds = [second, first];
      await expectOneEvent(doc, ['GET', notesUrl(patientId)], 200, {
        kind: 'note_list',
        recordIds: noteIds,
        outcome: 'read',
        route: '/api/v1/patients/:id/notes',
        patients: [patientId],
      });
      await expectOneEvent(doc, ['GET', `${notesUrl(patientId)}/${first}`], 200, {
        kind: 'note',
        recordIds: [first],
        outcome: 'read',
        route: '/api/v1/patients/:id/notes/:noteId',
        patients: [patientId],
      });
      await expectOneEvent(
        doc,
        ['PUT', `${notesUrl(patientId)}/${first}`, { subjective: `${noteCanary} better`, noteTime: minutesAgo(20), version: 1 }],
        200,
        { kind: 'note', recordIds: [first], outcome: 'read', route: '/api/v1/patients/:id/notes/:noteId', patients: [patientId] },
      );
    });

    it('requesting, listing and reading summaries log the job or the summary shown', async () => {
      const patient = await patientWithNotes(rig);
      const { jobId, summary } = await readySummary(rig, patient.id);
      const on = { outcome: 'read', patients: [patient.id] };
      await expectOneEvent(doc, ['POST', `${patientUrl(patient.id)}/summaries`, {}], 200, {
        ...on,
        kind: 'summary_job',
        recordIds: [jobId],
        route: '/api/v1/patients/:id/summaries',
      });
      await expectOneEvent(doc, ['GET', `${patientUrl(patient.id)}/summaries`], 200, {
        ...on,
        kind: 'summary_job_list',
        recordIds: [jobId],
        route: '/api/v1/patients/:id/summaries',
      });
      await expectOneEvent(doc, ['GET', jobUrl(jobId)], 200, {
        ...on,
        kind: 'summary_job',
        recordIds: [jobId],
        route: '/api/v1/summary-jobs/:jobId',
      });
      await expectOneEvent(doc, ['GET', `${jobUrl(jobId)}/summary`], 200, {
        ...on,
        kind: 'summary',
        recordIds: [summary.id],
        route: '/api/v1/summary-jobs/:jobId/summary',
      });
      await expectOneEvent(
        doc,
        [
          'POST',
          `${jobUrl(jobId)}/review`,
          { decision: 'approve', signature: { password: doc.password, meaning: 'approval', contentHash: summary.contentHash } },
        ],
        200,
        { ...on, kind: 'summary_job', recordIds: [jobId], route: '/api/v1/summary-jobs/:jobId/review' },
      );
    });

    it('logs a refused read as denied, for a clinician off the care team and for an admin', async () => {
      for (const who of [u.outsider, u.admin]) {
        await expectOneEvent(who, ['GET', patientUrl(patientId)], 403, {
          kind: 'patient',
          recordIds: [patientId],
          outcome: 'denied',
          route: '/api/v1/patients/:id',
          patients: [patientId],
        });
      }
      await expectOneEvent(u.outsider, ['GET', notesUrl(patientId)], 403, {
        kind: 'note_list',
        recordIds: [],
        outcome: 'denied',
        route: '/api/v1/patients/:id/notes',
        patients: [patientId],
      });
      // An unknown ID names no one: nothing to log.
      const unknown = await call(u.outsider, 'GET', patientUrl(randomUUID()));
      assert.equal(unknown.res.status, 404);
      assert.deepEqual(unknown.events, []);
    });

    it('writes no name, MRN, note text or search term into the access log', async () => {
      const { db } = testEnv();
      const text = JSON.stringify([await db('phi_access_events').select('*'), await db('phi_access_event_patients').select('*')]);
      for (const canary of [family, given, mrn, noteCanary, '555 0100', '1975-03-02']) {
        assert.ok(!text.includes(canary), `the access log holds ${canary}`);
      }
    });

    it('refuses to answer a read it cannot log (503), and undoes a write whose answer it cannot log', async () => {
      const { db } = testEnv();
      await db.raw('alter table phi_access_events rename to phi_access_events_away');
      try {
        const read = await rig.p.api('GET', patientUrl(patientId), { key: doc.apiKey });
        assert.equal(read.status, 503, JSON.stringify(read.body));
        assert.equal(read.body.type, 'urn:labflow:problem:access-log-unavailable');
        assert.ok(!JSON.stringify(read.body).includes(family));
        const before = await db('soap_notes').where({ patient_id: patientId }).count<{ n: string }[]>('* as n');
        const write = await rig.p.api('POST', notesUrl(patientId), { key: doc.apiKey, body: { plan: 'Rest', noteTime: minutesAgo(5) } });
        assert.equal(write.status, 503, JSON.stringify(write.body));
        assert.deepEqual(await db('soap_notes').where({ patient_id: patientId }).count<{ n: string }[]>('* as n'), before);
      } finally {
        await db.raw('alter table phi_access_events_away rename to phi_access_events');
      }
    });

    describe('the access log', () => {
      it('answers the privacy officer newest first, a keyset page at a time', async () => {
        const { db } = testEnv();
        const all = await db('phi_access_event_patients')
          .where({ patient_id: patientId })
          .orderBy([
            { column: 'occurred_at', order: 'desc' },
            { column: 'event_id', order: 'desc' },
          ]);
        assert.ok(all.length >= 8, `only ${all.length} events`);
        const seen: string[] = [];
        let cursor: string | null = null;
        let pages = 0;
        do {
          const q: string = `?limit=3${cursor ? `&cursor=${cursor}` : ''}`;
          const res = await rig.p.api('GET', accessLogUrl(patientId, q), { key: u.officer.apiKey });
          assert.equal(res.status, 200, JSON.stringify(res.body));
          assert.equal(res.body.total, all.length);
          assert.ok(res.body.items.length <= 3);
          seen.push(...res.body.items.map((e: { id: string }) => e.id));
          cursor = res.body.nextCursor;
          pages++;
        } while (cursor && pages < 20);
        assert.deepEqual(
          seen,
          all.map((r) => r.event_id),
        );
        const res = await rig.p.api('GET', accessLogUrl(patientId, '?limit=100'), { key: u.officer.apiKey });
        const searches = res.body.items.filter((e: { kind: string }) => e.kind === 'patient_list');
        // Newest first: the page of one, then the search that showed both patients.
        assert.deepEqual(
          searches.map((e: { patientsShown: number; recordIds: string[] }) => [e.patientsShown, e.recordIds]),
          [
            [1, []],
            [2, []],
          ],
        );
        const patch = res.body.items.find((e: { method: string }) => e.method === 'PATCH');
        assert.deepEqual(
          { username: patch.username, userId: patch.userId, outcome: patch.outcome, kind: patch.kind, route: patch.route },
          { username: doc.username, userId: doc.actor.userId, outcome: 'read', kind: 'patient', route: '/api/v1/patients/:id' },
        );
        assert.match(patch.at, /^\d{4}-\d\d-\d\dT/);
      });

      it('filters by user and by time range', async () => {
        const byOutsider = await rig.p.api('GET', accessLogUrl(patientId, `?user=${u.outsider.username}`), { key: u.officer.apiKey });
        assert.equal(byOutsider.status, 200, JSON.stringify(byOutsider.body));
        assert.deepEqual(
          byOutsider.body.items.map((e: { outcome: string; kind: string }) => `${e.outcome}:${e.kind}`),
          ['denied:note_list', 'denied:patient'],
        );

        const { db } = testEnv();
        const times = (
          await db('phi_access_event_patients').where({ patient_id: patientId }).orderBy('occurred_at').pluck('occurred_at')
        ).map((t: Date) => t.toISOString());
        // Whole-millisecond bounds put each event on the same side whether its time is read to the micro- or millisecond.
        const from = new Date(Date.parse(times[2]) + 1).toISOString();
        const to = new Date(Date.parse(times[times.length - 2])).toISOString();
        const expected = times.filter((t) => t >= from && t < to).length;
        const ranged = await rig.p.api('GET', accessLogUrl(patientId, `?from=${from}&to=${to}&limit=100`), { key: u.officer.apiKey });
        assert.equal(ranged.status, 200, JSON.stringify(ranged.body));
        assert.equal(ranged.body.items.length, ranged.body.total);
        assert.ok(
          ranged.body.items.every((e: { at: string }) => e.at >= from && e.at < to),
          JSON.stringify(ranged.body.items.map((e: { at: string }) => e.at)),
        );
        assert.equal(ranged.body.total, expected);
      });

      it('audits every read of the log, with its filters', async () => {
        const { db } = testEnv();
        const before = await db('audit_events')
          .where({ action: 'phi_access_log.read', entity_id: patientId })
          .count<{ n: string }[]>('* as n');
        const res = await rig.p.api('GET', accessLogUrl(patientId, `?user=${doc.username}&limit=2`), { key: u.officer.apiKey });
        assert.equal(res.status, 200);
        const rows = await db('audit_events').where({ action: 'phi_access_log.read', entity_id: patientId }).orderBy('seq');
        assert.equal(rows.length, Number(before[0].n) + 1);
        const last = rows[rows.length - 1];
        assert.equal(last.actor, u.officer.username);
        assert.equal(last.entity_type, 'patient');
        assert.equal(last.details.user, doc.username);
        assert.deepEqual(
          last.details.events,
          res.body.items.map((e: { id: string }) => e.id),
        );
      });

      it('is refused (403) to clinicians, even on the care team, admins, IT, QA and lab roles; it writes no audit event', async () => {
        const { db } = testEnv();
        const before = await db('audit_events').where({ action: 'phi_access_log.read' }).count<{ n: string }[]>('* as n');
        for (const who of [doc, u.outsider, u.admin, u.ops, u.qa, u.tech]) {
          const res = await rig.p.api('GET', accessLogUrl(patientId), { key: who.apiKey });
          assert.equal(res.status, 403, `${who.username}: ${JSON.stringify(res.body)}`);
          assert.match(res.headers.get('content-type') ?? '', /application\/problem\+json/);
        }
        assert.deepEqual(await db('audit_events').where({ action: 'phi_access_log.read' }).count<{ n: string }[]>('* as n'), before);
      });

      it('answers 404 for an unknown patient, 409 for a cursor from another log and 400 for bad filters', async () => {
        const unknown = await rig.p.api('GET', accessLogUrl(randomUUID()), { key: u.officer.apiKey });
        assert.equal(unknown.status, 404);
        assert.equal(unknown.body.type, 'urn:labflow:problem:not-found');
        assert.match(unknown.headers.get('content-type') ?? '', /application\/problem\+json/);

        // The newest event of the other patient's log names only them (a search naming both would be in both logs).
        assert.equal((await rig.p.api('GET', patientUrl(otherId), { key: doc.apiKey })).status, 200);
        const other = await rig.p.api('GET', accessLogUrl(otherId, '?limit=1'), { key: u.officer.apiKey });
        assert.ok(other.body.nextCursor, JSON.stringify(other.body));
        const foreign = await rig.p.api('GET', accessLogUrl(patientId, `?cursor=${other.body.nextCursor}`), { key: u.officer.apiKey });
        assert.equal(foreign.status, 409, JSON.stringify(foreign.body));

        for (const q of [
          '?from=2026-12-06T10:00:00Z&to=2026-12-06T09:00:00Z',
          '?from=yesterday',
          '?from=1850-01-01T00:00:00Z',
          '?user=Not%20A%20Username',
          '?limit=0',
          '?cursor=%%%',
          '?name=x',
        ]) {
          const res = await rig.p.api('GET', accessLogUrl(patientId, q), { key: u.officer.apiKey });
          assert.equal(res.status, 400, `${q}: ${JSON.stringify(res.body)}`);
        }
        const notes = await rig.p.api('GET', `${notesUrl(patientId)}?limit=1`, { key: doc.apiKey });
        const noteCursor = await rig.p.api('GET', accessLogUrl(patientId, `?cursor=${notes.body.nextCursor}`), { key: u.officer.apiKey });
        assert.equal(noteCursor.status, 400, JSON.stringify(noteCursor.body));
      });

      it("keeps a deleted patient's log readable", async () => {
        const gone = (await createPatient(rig.p, doc)).id;
        await rig.p.api('GET', patientUrl(gone), { key: doc.apiKey });
        const del = await rig.p.api('DELETE', patientUrl(gone), { key: doc.apiKey });
        assert.equal(del.status, 204, JSON.stringify(del.body));
        const res = await rig.p.api('GET', accessLogUrl(gone), { key: u.officer.apiKey });
        assert.equal(res.status, 200, JSON.stringify(res.body));
        assert.deepEqual(
          res.body.items.map((e: { method: string; kind: string }) => `${e.method}:${e.kind}`),
          ['GET:patient', 'POST:patient'],
        );
      });
    });
  });

  describe('the events cannot be changed', () => {
    let conn: Knex;
    before(() => {
      conn = knex({ client: 'pg', connection: testEnv().databaseUrl, pool: { min: 0, max: 1 } });
    });
    after(() => conn.destroy());

    it('refuses UPDATE, DELETE and TRUNCATE on both tables, even to the database owner', async () => {
      // An event that names a patient, so the patient index has a row of it to tamper with.
      const event = await conn('phi_access_events as e').join('phi_access_event_patients as p', 'p.event_id', 'e.id').first('e.id as id');
      assert.ok(event, 'no event to tamper with');
      const attempts: [string, () => Promise<unknown>][] = [
        ['update an event', () => conn('phi_access_events').where({ id: event.id }).update({ username: 'someone.else' })],
        ['delete an event', () => conn('phi_access_events').where({ id: event.id }).delete()],
        ['truncate the events', () => conn.raw('truncate phi_access_events cascade')],
        [
          're-point an event at another patient',
          () => conn('phi_access_event_patients').where({ event_id: event.id }).update({ patient_id: randomUUID() }),
        ],
        ['take an event out of a patient log', () => conn('phi_access_event_patients').where({ event_id: event.id }).delete()],
        ['truncate the patient index', () => conn.raw('truncate phi_access_event_patients')],
      ];
      for (const [what, attempt] of attempts) {
        await assert.rejects(attempt, /append-only/, `${what} was allowed`);
      }
      assert.ok(await conn('phi_access_events').where({ id: event.id }).first('id'));
    });
  });
});
