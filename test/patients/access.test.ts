import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { startPlatform, type Platform } from '../helpers/platform';
import { makeUsers, type TestUser } from '../helpers/users';
import { testEnv } from '../setup/env';
import { addNote, addToCareTeam, auditOf, auditText, createPatient, marker, notesUrl, PATIENTS, patientUrl, refused } from './support';

describe('patient records are PHI: only clinicians on the care team read or write them', () => {
  let p: Platform;
  let u: Record<'carla' | 'colin' | 'cleo' | 'tech' | 'qa' | 'ops' | 'admin' | 'adminclin' | 'retired', TestUser>;

  before(async () => {
    p = await startPlatform({ withWorker: false });
    u = await makeUsers({
      carla: ['clinician'],
      colin: ['clinician'],
      cleo: ['clinician'],
      tech: ['lab_technician'],
      qa: ['qa_manager'],
      ops: ['it_operator'],
      admin: ['admin'],
      adminclin: ['admin', 'clinician'],
      retired: ['clinician'],
    });
  });
  after(() => p.stop());

  describe('roles', () => {
    let patientId: string;
    let noteId: string;
    let family: string;

    before(async () => {
      family = marker();
      patientId = (await createPatient(p, u.carla, { familyName: family })).id;
      noteId = (await addNote(p, u.carla, patientId)).id;
    });

    const phiRequests = () => {
      const note = `${notesUrl(patientId)}/${noteId}`;
      const noteBody = { subjective: 'x', noteTime: new Date(Date.now() - 60_000).toISOString() };
      return [
        ['GET', PATIENTS, undefined],
        ['POST', PATIENTS, { givenName: 'Eve', familyName: 'Intruder', dateOfBirth: '1990-01-01' }],
        ['GET', patientUrl(patientId), undefined],
        ['PATCH', patientUrl(patientId), { givenName: 'Mallory' }],
        ['DELETE', patientUrl(patientId), undefined],
        ['GET', notesUrl(patientId), undefined],
        ['POST', notesUrl(patientId), noteBody],
        ['GET', note, undefined],
        ['PUT', note, { ...noteBody, version: 1 }],
        ['DELETE', note, undefined],
      ] as const;
    };

    for (const who of ['tech', 'qa', 'ops', 'admin'] as const) {
      it(`refuses a ${who === 'tech' ? 'lab technician' : who === 'qa' ? 'QA manager' : who === 'ops' ? 'IT operator' : 'admin'} every PHI route with 403 and writes nothing`, async () => {
        for (const [method, path, body] of phiRequests()) {
          const res = await refused(() => p.api(method, path, { key: u[who].apiKey, body }));
          assert.equal(res.status, 403, `${method} ${path}: ${JSON.stringify(res.body)}`);
          assert.match(res.headers.get('content-type') ?? '', /^application\/problem\+json/);
          assert.ok(!JSON.stringify(res.body).includes(family));
        }
      });
    }

    it('refuses a clinician not on the care team with 403, and lists no such patient for them', async () => {
      for (const [method, path, body] of phiRequests().filter(([, path]) => path !== PATIENTS)) {
        const res = await refused(() => p.api(method, path, { key: u.colin.apiKey, body }));
        assert.equal(res.status, 403, `${method} ${path}: ${JSON.stringify(res.body)}`);
      }
      const list = await p.api('GET', `${PATIENTS}?${new URLSearchParams({ q: family })}`, { key: u.colin.apiKey });
      assert.equal(list.status, 200);
      assert.deepEqual(list.body.items, []);
      assert.equal(list.body.total, 0);
      assert.equal((await p.api('GET', `${patientUrl(patientId)}/clinicians`, { key: u.colin.apiKey })).status, 403);
    });

    it('refuses an admin who is also a clinician but not on the care team', async () => {
      const res = await p.api('GET', patientUrl(patientId), { key: u.adminclin.apiKey });
      assert.equal(res.status, 403);
    });

    it('answers 404 for an unknown patient to a clinician, and 403 to anyone else', async () => {
      const unknown = patientUrl('00000000-0000-4000-8000-000000000000');
      assert.equal((await p.api('GET', unknown, { key: u.carla.apiKey })).status, 404);
      assert.equal((await p.api('GET', `${unknown}/notes`, { key: u.carla.apiKey })).status, 404);
      assert.equal((await p.api('GET', unknown, { key: u.tech.apiKey })).status, 403);
      assert.equal((await p.api('GET', unknown, { key: u.admin.apiKey })).status, 403);
    });

    it('answers 401 without a key', async () => {
      assert.equal((await p.api('GET', patientUrl(patientId))).status, 401);
    });
  });

  describe('the care team', () => {
    it('lets a clinician on the team add another, who can then read and write the record', async () => {
      const patient = await createPatient(p, u.carla);
      assert.equal((await p.api('GET', patientUrl(patient.id), { key: u.cleo.apiKey })).status, 403);
      const added = await addToCareTeam(p, u.carla, patient.id, u.cleo);
      assert.equal(added.status, 201);
      assert.deepEqual(
        added.body.clinicians.map((c: { username: string; addedBy: string }) => [c.username, c.addedBy]),
        [
          [u.carla.username, u.carla.username],
          [u.cleo.username, u.carla.username],
        ],
      );
      assert.equal((await p.api('GET', patientUrl(patient.id), { key: u.cleo.apiKey })).status, 200);
      await addNote(p, u.cleo, patient.id);
      const again = await refused(() =>
        p.api('POST', `${patientUrl(patient.id)}/clinicians`, { key: u.carla.apiKey, body: { username: u.cleo.username } }),
      );
      assert.equal(again.status, 200, 'already on the team: nothing to do');
    });

    it('adds only active clinicians', async () => {
      const patient = await createPatient(p, u.carla);
      for (const username of [u.tech.username, u.admin.username, 'nobody.here']) {
        const res = await refused(() => p.api('POST', `${patientUrl(patient.id)}/clinicians`, { key: u.carla.apiKey, body: { username } }));
        assert.equal(res.status, 422, username);
        assert.equal(res.body.errors[0].field, 'body.username');
      }
      await testEnv().db('users').where({ username: u.retired.username }).update({ active: false });
      const inactive = await refused(() =>
        p.api('POST', `${patientUrl(patient.id)}/clinicians`, { key: u.carla.apiKey, body: { username: u.retired.username } }),
      );
      assert.equal(inactive.status, 422);
      await testEnv().db('users').where({ username: u.retired.username }).update({ active: true });
    });

    it('removes a clinician, who then loses access, but never the last active one', async () => {
      const patient = await createPatient(p, u.carla);
      await addToCareTeam(p, u.carla, patient.id, u.colin);
      const removed = await p.api('DELETE', `${patientUrl(patient.id)}/clinicians/${u.colin.username}`, { key: u.carla.apiKey });
      assert.equal(removed.status, 204);
      assert.equal((await p.api('GET', patientUrl(patient.id), { key: u.colin.apiKey })).status, 403);
      const notMember = await refused(() =>
        p.api('DELETE', `${patientUrl(patient.id)}/clinicians/${u.colin.username}`, { key: u.carla.apiKey }),
      );
      assert.equal(notMember.status, 404);

      const last = await refused(() =>
        p.api('DELETE', `${patientUrl(patient.id)}/clinicians/${u.carla.username}`, { key: u.carla.apiKey }),
      );
      assert.equal(last.status, 409);
      assert.equal(last.body.type, 'urn:labflow:problem:last-clinician');

      // A deactivated clinician does not count as the one who remains.
      await addToCareTeam(p, u.carla, patient.id, u.retired);
      await testEnv().db('users').where({ username: u.retired.username }).update({ active: false });
      try {
        const onlyInactiveLeft = await refused(() =>
          p.api('DELETE', `${patientUrl(patient.id)}/clinicians/${u.carla.username}`, { key: u.carla.apiKey }),
        );
        assert.equal(onlyInactiveLeft.status, 409);
      } finally {
        await testEnv().db('users').where({ username: u.retired.username }).update({ active: true });
      }
      assert.deepEqual(
        (await auditOf([patient.id])).map((e) => [e.action, e.details.username ?? null]),
        [
          ['patient.created', null],
          ['patient.clinician_added', u.colin.username],
          ['patient.clinician_removed', u.colin.username],
          ['patient.clinician_added', u.retired.username],
        ],
      );
    });

    it('lets an admin see and manage the care team without reading the record, but not add themselves', async () => {
      const family = marker();
      const patient = await createPatient(p, u.carla, { familyName: family });
      const team = await p.api('GET', `${patientUrl(patient.id)}/clinicians`, { key: u.admin.apiKey });
      assert.equal(team.status, 200);
      assert.ok(!JSON.stringify(team.body).includes(family), 'no PHI in the care team answer');
      // An admin's addition waits for a clinician of the team to confirm it (test/patients/care-team.test.ts).
      const asked = await p.api('POST', `${patientUrl(patient.id)}/clinicians`, { key: u.admin.apiKey, body: { username: u.colin.username } });
      assert.equal(asked.status, 202, JSON.stringify(asked.body));
      const confirmed = await p.api('POST', `${asked.body.request.location}/confirm`, { key: u.carla.apiKey });
      assert.equal(confirmed.status, 200, JSON.stringify(confirmed.body));
      assert.equal(
        (await p.api('DELETE', `${patientUrl(patient.id)}/clinicians/${u.carla.username}`, { key: u.admin.apiKey })).status,
        204,
      );
      assert.equal((await p.api('GET', patientUrl(patient.id), { key: u.colin.apiKey })).status, 200, 'handed to a new clinician');
      assert.equal((await p.api('GET', patientUrl(patient.id), { key: u.admin.apiKey })).status, 403);

      const self = await refused(() =>
        p.api('POST', `${patientUrl(patient.id)}/clinicians`, {
          key: u.adminclin.apiKey,
          body: { username: u.adminclin.username },
        }),
      );
      assert.equal(self.status, 403);
      const unknown = await p.api('GET', `${PATIENTS}/00000000-0000-4000-8000-000000000000/clinicians`, { key: u.admin.apiKey });
      assert.equal(unknown.status, 404);
    });

    it('refuses other roles the care team', async () => {
      const patient = await createPatient(p, u.carla);
      for (const who of [u.tech, u.qa, u.ops, u.colin]) {
        assert.equal((await p.api('GET', `${patientUrl(patient.id)}/clinicians`, { key: who.apiKey })).status, 403);
        const add = await refused(() =>
          p.api('POST', `${patientUrl(patient.id)}/clinicians`, { key: who.apiKey, body: { username: who.username } }),
        );
        assert.equal(add.status, 403);
      }
    });
  });

  describe('deleting a patient', () => {
    it('removes the care team, the notes, summary jobs, attempts and summaries with it', async () => {
      const { db } = testEnv();
      const patient = await createPatient(p, u.carla);
      await addToCareTeam(p, u.carla, patient.id, u.cleo);
      const notes = [await addNote(p, u.carla, patient.id), await addNote(p, u.cleo, patient.id)];
      const workflowId = `soap-summary:${patient.id}:${randomBytes(16).toString('hex')}`;
      // A finished job and its summary, as the summary run leaves them.
      await db('summary_jobs').insert({
        workflow_id: workflowId,
        patient_id: patient.id,
        notes_hash: 'f'.repeat(32),
        note_ids: notes.map((n) => n.id),
        note_hashes: notes.map((n) => n.contentHash),
        stage: 'approved',
        providers: ['extractive'],
        requested_by: u.carla.actor.userId,
      });
      const [attempt] = await db('summary_attempts')
        .insert({
          idempotency_key: `${workflowId}:1:1:1`,
          workflow_id: workflowId,
          round: 1,
          provider: 'extractive',
          outcome: 'succeeded',
          started_at: new Date(),
        })
        .returning('id');
      await db('summaries').insert({
        workflow_id: workflowId,
        round: 1,
        patient_id: patient.id,
        attempt_id: attempt.id,
        text: 'Summary',
        ai_generated: false,
        provider: 'extractive',
        model: 'extractive-1',
        prompt_version: 'v1',
        prompt_hash: 'h',
        parameters: {},
        notes_hash: 'f'.repeat(32),
        note_hashes: JSON.stringify(notes.map((n) => n.contentHash)),
        validation: {},
        content_hash: 'c',
        status: 'approved',
      });

      const res = await p.api('DELETE', patientUrl(patient.id), { key: u.cleo.apiKey });
      assert.equal(res.status, 204, JSON.stringify(res.body));
      for (const table of ['patient_clinicians', 'soap_notes', 'summary_jobs', 'summaries']) {
        assert.equal(Number((await db(table).where({ patient_id: patient.id }).count('* as n').first())?.n), 0, table);
      }
      assert.equal(await db('summary_attempts').where({ workflow_id: workflowId }).first(), undefined);
      const deleted = (await auditOf([patient.id])).at(-1)!;
      assert.equal(deleted.action, 'patient.deleted');
      assert.deepEqual(deleted.details, { notes: 2, summaryJobs: 1, summaries: 1 });
    });
  });

  describe('the audit trail', () => {
    it('records every write with IDs and field names only: no name, birth date, MRN, address, phone or note text', async () => {
      const given = marker('Gv');
      const family = marker('Fm');
      const mrn = `MRN${marker('')}`;
      const address = `${marker('Street')} Road 7`;
      const phone = '+1 555 013 9977';
      const noteCanary = marker('Note');
      const created = await p.api('POST', PATIENTS, {
        key: u.carla.apiKey,
        body: { givenName: given, familyName: family, dateOfBirth: '1971-09-23', mrn, address, phone },
      });
      assert.equal(created.status, 201);
      const id = created.body.id;
      const newFamily = marker('Nf');
      await p.api('PATCH', patientUrl(id), { key: u.carla.apiKey, body: { familyName: newFamily, dateOfBirth: '1971-09-24' } });
      await addToCareTeam(p, u.carla, id, u.cleo);
      const note = await addNote(p, u.carla, id, { subjective: `Reports ${noteCanary}` });
      const put = await p.api('PUT', `${notesUrl(id)}/${note.id}`, {
        key: u.carla.apiKey,
        body: { text: `S: ${noteCanary} again\nP: rest`, noteTime: note.noteTime, version: 1 },
      });
      assert.equal(put.status, 200);
      assert.equal((await p.api('DELETE', `${notesUrl(id)}/${note.id}`, { key: u.carla.apiKey })).status, 204);
      assert.equal((await p.api('DELETE', `${patientUrl(id)}/clinicians/${u.cleo.username}`, { key: u.carla.apiKey })).status, 204);
      assert.equal((await p.api('DELETE', patientUrl(id), { key: u.carla.apiKey })).status, 204);

      assert.deepEqual(
        (await auditOf([id, note.id])).map((e) => e.action),
        [
          'patient.created',
          'patient.updated',
          'patient.clinician_added',
          'soap_note.created',
          'soap_note.updated',
          'soap_note.deleted',
          'patient.clinician_removed',
          'patient.deleted',
        ],
      );
      const trail = await auditText();
      for (const phi of [given, family, newFamily, mrn, address, phone, '1971-09-2', noteCanary]) {
        assert.ok(!trail.includes(phi), `the audit trail holds no "${phi}"`);
      }
    });
  });
});
