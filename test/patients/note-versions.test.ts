import assert from 'node:assert/strict';
import { startPlatform, type Platform } from '../helpers/platform';
import { makeUsers, type TestUser } from '../helpers/users';
import { testEnv } from '../setup/env';
import { addNote, addToCareTeam, createPatient, marker, notesUrl, refused } from './support';

describe('a SOAP note keeps every version', () => {
  let p: Platform;
  let u: Record<'carla' | 'cleo' | 'colin' | 'admin' | 'pria', TestUser>;

  before(async () => {
    p = await startPlatform({ withWorker: false });
    u = await makeUsers({ carla: ['clinician'], cleo: ['clinician'], colin: ['clinician'], admin: ['admin'], pria: ['privacy_officer'] });
  });
  after(() => p.stop());

  const versionsOf = (who: TestUser, patientId: string, noteId: string) =>
    p.api('GET', `${notesUrl(patientId)}/${noteId}/versions`, { key: who.apiKey });

  it('appends a version on each edit, by whoever made it, and lists them all to the care team', async () => {
    const patient = await createPatient(p, u.carla);
    await addToCareTeam(p, u.carla, patient.id, u.cleo);
    const first = marker('First');
    const note = await addNote(p, u.carla, patient.id, { subjective: first });
    const second = marker('Second');
    const put = await p.api('PUT', `${notesUrl(patient.id)}/${note.id}`, {
      key: u.cleo.apiKey,
      body: { subjective: second, plan: 'Rest', noteTime: note.noteTime, version: 1 },
    });
    assert.equal(put.status, 200, JSON.stringify(put.body));
    assert.equal(put.body.version, 2);
    // A request that changes nothing makes no version.
    const same = await p.api('PUT', `${notesUrl(patient.id)}/${note.id}`, {
      key: u.cleo.apiKey,
      body: { subjective: second, plan: 'Rest', noteTime: note.noteTime, version: 2 },
    });
    assert.equal(same.body.version, 2);

    const res = await versionsOf(u.carla, patient.id, note.id);
    assert.equal(res.status, 200, JSON.stringify(res.body));
    assert.deepEqual(
      res.body.versions.map((v: { version: number; subjective: string; plan: string; recordedBy: string; deleted: boolean }) => [
        v.version,
        v.subjective,
        v.plan,
        v.recordedBy,
        v.deleted,
      ]),
      [
        [1, first, 'Ibuprofen', u.carla.username, false],
        [2, second, 'Rest', u.cleo.username, false],
      ],
    );
    assert.equal(res.body.versions[0].contentHash, note.contentHash);
    assert.equal(res.body.versions[1].contentHash, put.body.contentHash);
    assert.ok(res.body.versions.every((v: { recordedAt: string }) => !Number.isNaN(Date.parse(v.recordedAt))));

    // The earlier text stays in Postgres only: the audit trail names hashes and versions.
    const trail = JSON.stringify(await testEnv().db('audit_events').where({ entity_id: note.id }).select('details'));
    assert.ok(!trail.includes(first) && !trail.includes(second));
  });

  it('keeps the versions of a deleted note, with the deletion as the last one', async () => {
    const patient = await createPatient(p, u.carla);
    const text = marker('Gone');
    const note = await addNote(p, u.carla, patient.id, { subjective: text });
    assert.equal((await p.api('DELETE', `${notesUrl(patient.id)}/${note.id}`, { key: u.carla.apiKey })).status, 204);
    assert.equal((await p.api('GET', `${notesUrl(patient.id)}/${note.id}`, { key: u.carla.apiKey })).status, 404);
    const res = await versionsOf(u.carla, patient.id, note.id);
    assert.equal(res.status, 200);
    assert.deepEqual(
      res.body.versions.map((v: { version: number; subjective: string; deleted: boolean }) => [v.version, v.subjective, v.deleted]),
      [
        [1, text, false],
        [2, text, true],
      ],
    );
  });

  it('refuses to change or delete a version in the database, while the patient is kept', async () => {
    const patient = await createPatient(p, u.carla);
    const note = await addNote(p, u.carla, patient.id);
    const versions = () => testEnv().db('soap_note_versions').where({ note_id: note.id });
    await assert.rejects(versions().update({ subjective: 'rewritten' }), /note versions are kept/);
    await assert.rejects(versions().delete(), /note versions are kept/);
    assert.equal((await versions()).length, 1);
    assert.equal((await versions().first('subjective')).subjective, 'Headache for two days');
  });

  it('logs every read of the versions as a PHI access, and refuses (logged as denied) anyone off the care team', async () => {
    const patient = await createPatient(p, u.carla);
    const note = await addNote(p, u.carla, patient.id);
    const events = () =>
      testEnv()
        .db('phi_access_events as e')
        .join('phi_access_event_patients as ep', 'ep.event_id', 'e.id')
        .where({ 'ep.patient_id': patient.id, 'e.record_kind': 'note_versions' })
        .orderBy('e.occurred_at')
        .select('e.username', 'e.outcome', 'e.record_ids', 'e.route');
    assert.equal((await versionsOf(u.carla, patient.id, note.id)).status, 200);
    assert.equal((await versionsOf(u.carla, patient.id, note.id)).status, 200);
    for (const who of [u.colin, u.admin, u.pria]) {
      const res = await refused(() => versionsOf(who, patient.id, note.id));
      assert.equal(res.status, 403, who.username);
    }
    const logged = await events();
    assert.deepEqual(
      logged.map((e) => [e.username, e.outcome, e.record_ids]),
      [
        [u.carla.username, 'read', [note.id]],
        [u.carla.username, 'read', [note.id]],
        [u.colin.username, 'denied', [note.id]],
        [u.admin.username, 'denied', [note.id]],
      ],
      'each read is an access event; a refusal past the role check is logged as denied',
    );
    assert.equal(logged[0].route, '/api/v1/patients/:id/notes/:noteId/versions');
    const unknown = await versionsOf(u.carla, patient.id, '00000000-0000-4000-8000-000000000000');
    assert.equal(unknown.status, 404);
  });
});
