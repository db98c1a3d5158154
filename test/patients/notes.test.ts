import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { noteContentHash, notesFingerprint, notesForSummary, patientIdentifiers } from '../../db/soap-notes';
import { startPlatform, type Platform } from '../helpers/platform';
import { makeUsers, type TestUser } from '../helpers/users';
import { testEnv } from '../setup/env';
import { addNote, auditOf, createPatient, minutesAgo, notesUrl, refused } from './support';

describe('SOAP notes: sections or free text, time, versions and the fingerprint a summary is named by', () => {
  let p: Platform;
  let u: Record<'carla', TestUser>;
  let patientId: string;

  before(async () => {
    p = await startPlatform({ withWorker: false });
    u = await makeUsers({ carla: ['clinician'] });
    patientId = (await createPatient(p, u.carla)).id;
  });
  after(() => p.stop());

  const noteUrl = (noteId: string, patient = patientId) => `${notesUrl(patient)}/${noteId}`;

  it('stores a note given as four sections, with its content hash, version 1 and an ETag', async () => {
    const noteTime = '2026-01-15T09:30:00.000Z';
    const res = await p.api('POST', notesUrl(patientId), {
      key: u.carla.apiKey,
      body: {
        subjective: ' Cough for a week ',
        objective: 'T 38.1 C',
        assessment: 'Bronchitis',
        plan: 'Fluids, review in 7 days',
        noteTime,
      },
    });
    assert.equal(res.status, 201, JSON.stringify(res.body));
    assert.equal(res.headers.get('location'), noteUrl(res.body.id));
    assert.equal(res.headers.get('etag'), '"v1"');
    assert.equal(res.body.subjective, 'Cough for a week');
    assert.equal(res.body.version, 1);
    assert.equal(res.body.author, u.carla.username);
    assert.equal(res.body.noteTime, noteTime);
    const expected = createHash('sha256')
      .update(
        JSON.stringify({
          assessment: 'Bronchitis',
          noteTime,
          objective: 'T 38.1 C',
          plan: 'Fluids, review in 7 days',
          subjective: 'Cough for a week',
        }),
      )
      .digest('hex');
    assert.equal(res.body.contentHash, expected, 'sha256 of the canonical JSON (keys sorted)');
    const read = await p.api('GET', noteUrl(res.body.id), { key: u.carla.apiKey });
    assert.deepEqual(read.body, res.body);
  });

  it('parses free text with headings into the sections; an offset note time is stored in UTC', async () => {
    const res = await p.api('POST', notesUrl(patientId), {
      key: u.carla.apiKey,
      body: {
        text: 'Subjective: sore throat\nsince Monday\n\nobjective:\nTonsils enlarged\nA: Pharyngitis\nPLAN: Rapid strep test',
        noteTime: '2026-01-16T10:00:00+02:00',
      },
    });
    assert.equal(res.status, 201, JSON.stringify(res.body));
    assert.equal(res.body.subjective, 'sore throat\nsince Monday');
    assert.equal(res.body.objective, 'Tonsils enlarged');
    assert.equal(res.body.assessment, 'Pharyngitis');
    assert.equal(res.body.plan, 'Rapid strep test');
    assert.equal(res.body.noteTime, '2026-01-16T08:00:00.000Z');
    assert.equal(res.body.contentHash, noteContentHash({ ...res.body, noteTime: '2026-01-16T08:00:00Z' }));
  });

  it('accepts a note with only some sections', async () => {
    const res = await p.api('POST', notesUrl(patientId), { key: u.carla.apiKey, body: { text: 'P: Follow up', noteTime: minutesAgo(5) } });
    assert.equal(res.status, 201, JSON.stringify(res.body));
    assert.deepEqual([res.body.subjective, res.body.objective, res.body.assessment, res.body.plan], ['', '', '', 'Follow up']);
  });

  it('refuses free text with words before the first heading, naming the line, and writes nothing', async () => {
    const res = await refused(() =>
      p.api('POST', notesUrl(patientId), { key: u.carla.apiKey, body: { text: 'Seen today.\nS: cough', noteTime: minutesAgo(5) } }),
    );
    assert.equal(res.status, 400);
    assert.equal(res.body.errors[0].field, 'body.text');
    assert.match(res.body.errors[0].detail, /before the first section heading \(line 1\)/);
    assert.ok(!JSON.stringify(res.body).includes('Seen today'), 'the note text is not echoed');
  });

  it('refuses free text without any heading, listing the headings it expects', async () => {
    const res = await refused(() =>
      p.api('POST', notesUrl(patientId), { key: u.carla.apiKey, body: { text: 'cough and fever', noteTime: minutesAgo(5) } }),
    );
    assert.equal(res.status, 400);
    assert.match(res.body.detail, /Subjective \(S:\), Objective \(O:\), Assessment \(A:\), Plan \(P:\)/);
  });

  it('refuses text together with sections, naming text', async () => {
    const res = await refused(() =>
      p.api('POST', notesUrl(patientId), { key: u.carla.apiKey, body: { text: 'S: a', plan: 'b', noteTime: minutesAgo(5) } }),
    );
    assert.equal(res.status, 400);
    assert.deepEqual(
      res.body.errors.map((e: { field: string }) => e.field),
      ['body.text'],
    );
  });

  it('refuses a note time in the future beyond a small clock skew, but takes one a minute ahead', async () => {
    const future = await refused(() =>
      p.api('POST', notesUrl(patientId), {
        key: u.carla.apiKey,
        body: { subjective: 'x', noteTime: new Date(Date.now() + 3_600_000).toISOString() },
      }),
    );
    assert.equal(future.status, 400);
    assert.equal(future.body.errors[0].field, 'body.noteTime');
    const skewed = await p.api('POST', notesUrl(patientId), {
      key: u.carla.apiKey,
      body: { subjective: 'x', noteTime: new Date(Date.now() + 60_000).toISOString() },
    });
    assert.equal(skewed.status, 201);
  });

  it("refuses a note dated before the patient's birth with 422", async () => {
    const res = await refused(() =>
      p.api('POST', notesUrl(patientId), { key: u.carla.apiKey, body: { subjective: 'x', noteTime: '1979-01-01T00:00:00Z' } }),
    );
    assert.equal(res.status, 422);
    assert.equal(res.body.type, 'urn:labflow:problem:note-before-birth');
  });

  describe('changing a note', () => {
    it('replaces a note given the current version, bumps it and recomputes the hash', async () => {
      const note = await addNote(p, u.carla, patientId);
      const res = await p.api('PUT', noteUrl(note.id), {
        key: u.carla.apiKey,
        body: { subjective: 'Headache for three days', noteTime: note.noteTime, version: 1 },
      });
      assert.equal(res.status, 200, JSON.stringify(res.body));
      assert.equal(res.body.version, 2);
      assert.equal(res.headers.get('etag'), '"v2"');
      assert.equal(res.body.plan, '', 'a PUT replaces the whole note');
      assert.notEqual(res.body.contentHash, note.contentHash);
      assert.equal(res.body.contentHash, noteContentHash(res.body));
      const [, updated] = await auditOf([note.id]);
      assert.equal(updated.action, 'soap_note.updated');
      assert.deepEqual(updated.details.fields, ['subjective', 'objective', 'assessment', 'plan']);
    });

    it('takes the version from If-Match too', async () => {
      const note = await addNote(p, u.carla, patientId);
      const res = await p.api('PUT', noteUrl(note.id), {
        key: u.carla.apiKey,
        headers: { 'if-match': '"v1"' },
        body: { text: 'S: better\nP: stop ibuprofen', noteTime: note.noteTime },
      });
      assert.equal(res.status, 200, JSON.stringify(res.body));
      assert.equal(res.body.version, 2);
    });

    it('answers 409 to a stale version and leaves the note as it was', async () => {
      const note = await addNote(p, u.carla, patientId);
      const first = await p.api('PUT', noteUrl(note.id), {
        key: u.carla.apiKey,
        body: { plan: 'First edit', noteTime: note.noteTime, version: 1 },
      });
      assert.equal(first.status, 200);
      const stale = await refused(() =>
        p.api('PUT', noteUrl(note.id), { key: u.carla.apiKey, body: { plan: 'Lost edit', noteTime: note.noteTime, version: 1 } }),
      );
      assert.equal(stale.status, 409);
      assert.equal(stale.body.type, 'urn:labflow:problem:stale-version');
      assert.equal(stale.body.currentVersion, 2);
      const staleHeader = await p.api('PUT', noteUrl(note.id), {
        key: u.carla.apiKey,
        headers: { 'if-match': '"v1"' },
        body: { plan: 'Lost edit', noteTime: note.noteTime },
      });
      assert.equal(staleHeader.status, 409);
      assert.equal((await p.api('GET', noteUrl(note.id), { key: u.carla.apiKey })).body.plan, 'First edit');
    });

    it('answers 428 to a replacement without any version, and 400 to If-Match and version disagreeing', async () => {
      const note = await addNote(p, u.carla, patientId);
      const none = await refused(() =>
        p.api('PUT', noteUrl(note.id), { key: u.carla.apiKey, body: { plan: 'x', noteTime: note.noteTime } }),
      );
      assert.equal(none.status, 428);
      const both = await refused(() =>
        p.api('PUT', noteUrl(note.id), {
          key: u.carla.apiKey,
          headers: { 'if-match': '"v2"' },
          body: { plan: 'x', noteTime: note.noteTime, version: 1 },
        }),
      );
      assert.equal(both.status, 400);
      const junk = await refused(() =>
        p.api('PUT', noteUrl(note.id), {
          key: u.carla.apiKey,
          headers: { 'if-match': 'W/"v1"' },
          body: { plan: 'x', noteTime: note.noteTime },
        }),
      );
      assert.equal(junk.status, 400);
    });

    it('writes nothing and keeps the version when a replacement changes nothing', async () => {
      const note = await addNote(p, u.carla, patientId, {
        text: 'S: same',
        subjective: undefined,
        objective: undefined,
        assessment: undefined,
        plan: undefined,
      });
      const res = await refused(() =>
        p.api('PUT', noteUrl(note.id), { key: u.carla.apiKey, body: { subjective: 'same', noteTime: note.noteTime, version: 1 } }),
      );
      assert.equal(res.status, 200);
      assert.equal(res.body.version, 1);
    });

    it('deletes a note with 204; with a stale If-Match it answers 409 instead', async () => {
      const note = await addNote(p, u.carla, patientId);
      const stale = await refused(() => p.api('DELETE', noteUrl(note.id), { key: u.carla.apiKey, headers: { 'if-match': '"v7"' } }));
      assert.equal(stale.status, 409);
      assert.equal((await p.api('DELETE', noteUrl(note.id), { key: u.carla.apiKey, headers: { 'if-match': '"v1"' } })).status, 204);
      assert.equal((await p.api('GET', noteUrl(note.id), { key: u.carla.apiKey })).status, 404);
      assert.equal((await p.api('DELETE', noteUrl(note.id), { key: u.carla.apiKey })).status, 404);
      assert.deepEqual(
        (await auditOf([note.id])).map((e) => e.action),
        ['soap_note.created', 'soap_note.deleted'],
      );
    });

    it("answers 404 for a note of another patient under this patient's path", async () => {
      const other = await createPatient(p, u.carla);
      const note = await addNote(p, u.carla, other.id);
      assert.equal((await p.api('GET', noteUrl(note.id), { key: u.carla.apiKey })).status, 404);
      const put = await refused(() =>
        p.api('PUT', noteUrl(note.id), { key: u.carla.apiKey, body: { plan: 'x', noteTime: note.noteTime, version: 1 } }),
      );
      assert.equal(put.status, 404);
    });
  });

  describe('listing notes', () => {
    let listed: string;
    let times: string[];

    before(async () => {
      listed = (await createPatient(p, u.carla)).id;
      // Two notes share a time, so the ID has to break the tie for pages to be stable.
      times = [minutesAgo(600), minutesAgo(500), minutesAgo(500), minutesAgo(400), minutesAgo(300), minutesAgo(200), minutesAgo(100)];
      times[2] = times[1];
      for (const noteTime of times) await addNote(p, u.carla, listed, { noteTime });
    });

    async function pages(sort?: string) {
      const all: { id: string; noteTime: string }[][] = [];
      let cursor: string | null = null;
      do {
        const q = new URLSearchParams({ limit: '3', ...(sort ? { sort } : {}), ...(cursor ? { cursor } : {}) });
        const res = await p.api('GET', `${notesUrl(listed)}?${q}`, { key: u.carla.apiKey });
        assert.equal(res.status, 200, JSON.stringify(res.body));
        assert.equal(res.body.total, times.length);
        all.push(res.body.items);
        cursor = res.body.nextCursor;
      } while (cursor);
      return all;
    }

    it('lists newest first by default, in pages without duplicates or gaps', async () => {
      const got = await pages();
      assert.deepEqual(
        got.map((x) => x.length),
        [3, 3, 1],
      );
      const flat = got.flat();
      assert.equal(new Set(flat.map((n) => n.id)).size, times.length);
      const noteTimes = flat.map((n) => n.noteTime);
      assert.deepEqual(noteTimes, [...noteTimes].sort().reverse());
    });

    it('lists oldest first with sort=note_time, the exact reverse', async () => {
      const newest = (await pages()).flat().map((n) => n.id);
      const oldest = (await pages('note_time')).flat().map((n) => n.id);
      assert.deepEqual(oldest, [...newest].reverse());
    });

    it('gives the summary a fingerprint of the notes ordered by time, and the notes it names', async () => {
      const oldest = (await pages('note_time')).flat() as unknown as { id: string; contentHash: string }[];
      const fp = await notesFingerprint(testEnv().db, listed);
      assert.deepEqual(
        fp.noteIds,
        oldest.map((n) => n.id),
      );
      assert.deepEqual(
        fp.noteHashes,
        oldest.map((n) => n.contentHash),
      );
      const lines = oldest.map((n) => `${n.id}:${n.contentHash}`).join('\n');
      assert.equal(fp.notesHash, createHash('sha256').update(lines).digest('hex').slice(0, 32));

      const forSummary = await notesForSummary(testEnv().db, [...fp.noteIds].reverse());
      assert.deepEqual(
        forSummary.map((n) => n.id),
        fp.noteIds,
      );
      assert.equal(forSummary[0].subjective, 'Headache for two days');
      assert.equal(forSummary[0].contentHash, fp.noteHashes[0]);

      const empty = await notesFingerprint(testEnv().db, (await createPatient(p, u.carla)).id);
      assert.deepEqual([empty.noteIds, empty.noteHashes], [[], []]);
    });

    it('changes the fingerprint when a note changes, and only then', async () => {
      const before = await notesFingerprint(testEnv().db, listed);
      const [note] = (await p.api('GET', `${notesUrl(listed)}?limit=1`, { key: u.carla.apiKey })).body.items;
      const same = await p.api('PUT', noteUrl(note.id, listed), { key: u.carla.apiKey, body: { ...pick(note), version: note.version } });
      assert.equal(same.status, 200);
      assert.equal((await notesFingerprint(testEnv().db, listed)).notesHash, before.notesHash);
      const changed = await p.api('PUT', noteUrl(note.id, listed), {
        key: u.carla.apiKey,
        body: { ...pick(note), plan: 'Changed plan', version: note.version },
      });
      assert.equal(changed.status, 200);
      assert.notEqual((await notesFingerprint(testEnv().db, listed)).notesHash, before.notesHash);
    });

    it("hands the prompt builder the patient's identifiers", async () => {
      const patient = await createPatient(p, u.carla, {
        mrn: `ID-${Date.now()}`,
        sex: 'other',
        address: '2 High St',
        phone: '+44 20 7946 0000',
      });
      assert.deepEqual(await patientIdentifiers(testEnv().db, patient.id), {
        givenName: 'Ada',
        familyName: patient.familyName,
        dateOfBirth: '1980-05-17',
        sex: 'other',
        mrn: patient.mrn,
        address: '2 High St',
        phone: '+44 20 7946 0000',
      });
    });
  });
});

function pick(note: Record<string, unknown>) {
  return { subjective: note.subjective, objective: note.objective, assessment: note.assessment, plan: note.plan, noteTime: note.noteTime };
}
