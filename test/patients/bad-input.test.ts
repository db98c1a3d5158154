import assert from 'node:assert/strict';
import { assertProblem } from '../api/support';
import { startPlatform, type Platform } from '../helpers/platform';
import { makeUsers, type TestUser } from '../helpers/users';
import { createPatient, minutesAgo, notesUrl, PATIENTS, patientUrl, refused } from './support';

describe('bad input to the patient routes is refused with a problem, names the field, echoes no value and writes nothing', () => {
  let p: Platform;
  let u: Record<'carla', TestUser>;
  let patientId: string;

  before(async () => {
    p = await startPlatform({ withWorker: false });
    u = await makeUsers({ carla: ['clinician'] });
    patientId = (await createPatient(p, u.carla)).id;
  });
  after(() => p.stop());

  const valid = { givenName: 'Ada', familyName: 'Lovelace', dateOfBirth: '1980-05-17' };
  const tomorrow = () => new Date(Date.now() + 2 * 86_400_000).toISOString().slice(0, 10);

  const patientCases: [string, Record<string, unknown>, string][] = [
    ['a missing given name', { familyName: 'Lovelace', dateOfBirth: '1980-05-17' }, 'body.givenName'],
    ['a blank family name', { ...valid, familyName: '   ' }, 'body.familyName'],
    ['a name of 201 characters', { ...valid, givenName: 'A'.repeat(201) }, 'body.givenName'],
    ['a name with digits', { ...valid, givenName: 'R2D2xq' }, 'body.givenName'],
    ['a name with a comma', { ...valid, familyName: 'Lovelace, Ada' }, 'body.familyName'],
    ['a name sent as a number', { ...valid, givenName: 42 }, 'body.givenName'],
    ['a date of birth that does not exist', { ...valid, dateOfBirth: '1980-02-30' }, 'body.dateOfBirth'],
    ['a date of birth in another format', { ...valid, dateOfBirth: '17/05/1980' }, 'body.dateOfBirth'],
    ['a date of birth in the future', { ...valid, dateOfBirth: tomorrow() }, 'body.dateOfBirth'],
    ['a date of birth before 1900', { ...valid, dateOfBirth: '1899-12-31' }, 'body.dateOfBirth'],
    ['an MRN with spaces', { ...valid, mrn: 'MRN 42' }, 'body.mrn'],
    ['an MRN of 65 characters', { ...valid, mrn: 'M'.repeat(65) }, 'body.mrn'],
    ['a sex it does not know', { ...valid, sex: 'x' }, 'body.sex'],
    ['a phone number with letters', { ...valid, phone: 'call me' }, 'body.phone'],
    ['an unknown field', { ...valid, ssn: '078-05-1120' }, 'body.ssn'],
    ['the internal ID', { ...valid, id: '00000000-0000-4000-8000-000000000000' }, 'body.id'],
  ];

  for (const [what, body, field] of patientCases) {
    it(`refuses a new patient with ${what}`, async () => {
      const res = await refused(() => p.api('POST', PATIENTS, { key: u.carla.apiKey, body }));
      assertProblem(res, 400, 'validation', field);
      const echoed = Object.values(body).filter((v) => typeof v === 'string' && v.trim().length > 3 && !Object.values(valid).includes(v));
      for (const value of echoed) assert.ok(!JSON.stringify(res.body).includes(value as string), `"${value}" is not echoed`);
    });
  }

  it('refuses a change with nothing in it, and a change that clears a required field', async () => {
    assertProblem(await refused(() => p.api('PATCH', patientUrl(patientId), { key: u.carla.apiKey, body: {} })), 400, 'validation', 'body');
    assertProblem(
      await refused(() => p.api('PATCH', patientUrl(patientId), { key: u.carla.apiKey, body: { familyName: null } })),
      400,
      'validation',
      'body.familyName',
    );
  });

  it('refuses malformed JSON, a body not sent as JSON, and a body over the size limit', async () => {
    assertProblem(await refused(() => p.api('POST', PATIENTS, { key: u.carla.apiKey, raw: '{"givenName": "Ada"' })), 400, 'malformed-json');
    assertProblem(
      await refused(() =>
        p.api('POST', PATIENTS, {
          key: u.carla.apiKey,
          raw: 'givenName=Ada',
          headers: { 'content-type': 'application/x-www-form-urlencoded' },
        }),
      ),
      415,
      'unsupported-media-type',
    );
    const huge = { subjective: 'x'.repeat(70 * 1024), noteTime: minutesAgo(1) };
    assertProblem(await refused(() => p.api('POST', notesUrl(patientId), { key: u.carla.apiKey, body: huge })), 413, 'payload-too-large');
  });

  it('refuses a patient ID or note ID that is not a UUID', async () => {
    assertProblem(await p.api('GET', `${PATIENTS}/42`, { key: u.carla.apiKey }), 400, 'validation', 'params.id');
    assertProblem(await p.api('GET', `${notesUrl(patientId)}/first`, { key: u.carla.apiKey }), 400, 'validation', 'params.noteId');
    assertProblem(await refused(() => p.api('DELETE', `${PATIENTS}/not-an-id`, { key: u.carla.apiKey })), 400, 'validation', 'params.id');
  });

  it('refuses list parameters it does not know or cannot read', async () => {
    assertProblem(await p.api('GET', `${PATIENTS}?sort=dob`, { key: u.carla.apiKey }), 400, 'validation', 'query.sort');
    assertProblem(await p.api('GET', `${PATIENTS}?limit=0`, { key: u.carla.apiKey }), 400, 'validation', 'query.limit');
    assertProblem(await p.api('GET', `${PATIENTS}?page=2`, { key: u.carla.apiKey }), 400, 'validation', 'query.page');
    assertProblem(await p.api('GET', `${notesUrl(patientId)}?sort=plan`, { key: u.carla.apiKey }), 400, 'validation', 'query.sort');
  });

  const noteCases: [string, Record<string, unknown>, string][] = [
    ['no note time', { subjective: 'x' }, 'body.noteTime'],
    ['a note time without a zone', { subjective: 'x', noteTime: '2026-01-01T10:00:00' }, 'body.noteTime'],
    ['a note time before 1900', { subjective: 'x', noteTime: '1899-06-01T10:00:00Z' }, 'body.noteTime'],
    ['no section with text', { subjective: ' ', plan: '', noteTime: minutesAgo(1) }, 'body.subjective'],
    ['nothing but the time', { noteTime: minutesAgo(1) }, 'body'],
    ['a section sent as a list', { subjective: ['a'], noteTime: minutesAgo(1) }, 'body.subjective'],
    ['a heading given twice', { text: 'S: cough\nO: P: 72\nP: 80 bpm\nP: rest', noteTime: minutesAgo(1) }, 'body.text'],
    ['headings with nothing under them', { text: 'S:\nO:\nA:\nP:', noteTime: minutesAgo(1) }, 'body.text'],
    ['an unknown field', { subjective: 'x', noteTime: minutesAgo(1), diagnosis: 'flu' }, 'body.diagnosis'],
  ];

  for (const [what, body, field] of noteCases) {
    it(`refuses a note with ${what}`, async () => {
      assertProblem(await refused(() => p.api('POST', notesUrl(patientId), { key: u.carla.apiKey, body })), 400, 'validation', field);
    });
  }
});
