import assert from 'node:assert/strict';
import { startPlatform, type Platform } from '../helpers/platform';
import { makeUsers, type TestUser } from '../helpers/users';
import { testEnv } from '../setup/env';
import { auditOf, createPatient, marker, PATIENTS, patientUrl } from './support';

interface Listed {
  id: string;
  givenName: string;
  familyName: string;
  dateOfBirth: string;
  createdAt: string;
  updatedAt: string;
}

describe('patients: create, read, change, delete, search, sort and page', () => {
  let p: Platform;
  let u: Record<'carla' | 'colin', TestUser>;

  before(async () => {
    p = await startPlatform({ withWorker: false });
    u = await makeUsers({ carla: ['clinician'], colin: ['clinician'] });
  });
  after(() => p.stop());

  /** Every page of a listing, following nextCursor to the end. */
  async function allPages(user: TestUser, query: Record<string, string>): Promise<{ pages: Listed[][]; totals: number[] }> {
    const pages: Listed[][] = [];
    const totals: number[] = [];
    let cursor: string | null = null;
    do {
      const params = new URLSearchParams({ ...query, ...(cursor ? { cursor } : {}) });
      const res = await p.api('GET', `${PATIENTS}?${params}`, { key: user.apiKey });
      assert.equal(res.status, 200, JSON.stringify(res.body));
      pages.push(res.body.items);
      totals.push(res.body.total);
      cursor = res.body.nextCursor;
      assert.ok(pages.length < 50, 'the cursor chain ends');
    } while (cursor);
    return { pages, totals };
  }

  it('creates a patient with 201 and a Location, puts the creator on the care team, and reads it back', async () => {
    const res = await p.api('POST', PATIENTS, {
      key: u.carla.apiKey,
      body: {
        givenName: 'Grace',
        familyName: 'Hopper',
        dateOfBirth: '1906-12-09',
        mrn: `MRN-${marker('')}`,
        sex: 'female',
        phone: '+1 555 0100',
      },
    });
    assert.equal(res.status, 201, JSON.stringify(res.body));
    assert.equal(res.headers.get('location'), patientUrl(res.body.id));
    assert.match(res.body.id, /^[0-9a-f-]{36}$/);
    assert.equal(res.body.dateOfBirth, '1906-12-09');
    assert.equal(res.body.address, null);
    assert.equal(res.body.createdBy, u.carla.username);

    const read = await p.api('GET', patientUrl(res.body.id), { key: u.carla.apiKey });
    assert.equal(read.status, 200);
    assert.deepEqual(read.body, res.body);
    const team = await p.api('GET', `${patientUrl(res.body.id)}/clinicians`, { key: u.carla.apiKey });
    assert.deepEqual(
      team.body.clinicians.map((c: { username: string }) => c.username),
      [u.carla.username],
    );
  });

  it('changes only the fields sent, clears an optional one with null, and audits the field names', async () => {
    const patient = await createPatient(p, u.carla, { mrn: `M-${marker('')}`, address: '1 Main St' });
    const res = await p.api('PATCH', patientUrl(patient.id), { key: u.carla.apiKey, body: { familyName: 'Lovelace', address: null } });
    assert.equal(res.status, 200, JSON.stringify(res.body));
    assert.equal(res.body.familyName, 'Lovelace');
    assert.equal(res.body.givenName, patient.givenName);
    assert.equal(res.body.address, null);
    assert.equal(res.body.mrn, patient.mrn);
    assert.ok(res.body.updatedAt > (await p.api('GET', patientUrl(patient.id), { key: u.carla.apiKey })).body.createdAt);

    const again = await p.api('PATCH', patientUrl(patient.id), { key: u.carla.apiKey, body: { familyName: 'Lovelace' } });
    assert.equal(again.status, 200);
    const events = await auditOf([patient.id]);
    assert.deepEqual(
      events.map((e) => e.action),
      ['patient.created', 'patient.updated'],
      'an unchanged request writes no event',
    );
    assert.deepEqual(events[1].details.fields, ['familyName', 'address']);
    assert.deepEqual(
      (events[1].details.changes as { field: string }[]).map((c) => c.field),
      ['address', 'familyName'],
      'each changed field with hashes of its old and new value',
    );
    assert.ok(!JSON.stringify(events[1].details).includes('Lovelace'), 'no PHI value in the trail');
  });

  it('answers 409 to a second patient with the same MRN, without echoing it', async () => {
    const mrn = `MRN-${marker('')}`;
    await createPatient(p, u.carla, { mrn });
    const res = await p.api('POST', PATIENTS, {
      key: u.colin.apiKey,
      body: { givenName: 'Bo', familyName: 'Diddley', dateOfBirth: '1928-12-30', mrn },
    });
    assert.equal(res.status, 409);
    assert.equal(res.body.type, 'urn:labflow:problem:mrn-taken');
    assert.ok(!JSON.stringify(res.body).includes(mrn));
    const other = await createPatient(p, u.carla);
    const patched = await p.api('PATCH', patientUrl(other.id), { key: u.carla.apiKey, body: { mrn } });
    assert.equal(patched.status, 409);
  });

  it('deletes a patient with 204, after which it is gone', async () => {
    const patient = await createPatient(p, u.carla);
    const res = await p.api('DELETE', patientUrl(patient.id), { key: u.carla.apiKey });
    assert.equal(res.status, 204);
    assert.equal((await p.api('GET', patientUrl(patient.id), { key: u.carla.apiKey })).status, 404);
    assert.equal((await p.api('DELETE', patientUrl(patient.id), { key: u.carla.apiKey })).status, 404);
    assert.equal(await testEnv().db('patient_clinicians').where({ patient_id: patient.id }).first(), undefined);
  });

  describe('search by name', () => {
    let family: string;
    let ids: Record<'ann' | 'annabel' | 'maryAnn' | 'bob', string>;

    before(async () => {
      family = marker('Qx');
      ids = {
        ann: (await createPatient(p, u.carla, { givenName: 'Ann', familyName: family })).id,
        annabel: (await createPatient(p, u.carla, { givenName: 'Annabel', familyName: `${family} van der Berg` })).id,
        maryAnn: (await createPatient(p, u.carla, { givenName: 'Mary Ann', familyName: family })).id,
        bob: (await createPatient(p, u.carla, { givenName: 'Bob', familyName: `${family}son` })).id,
      };
      // Someone else's patient with the same name must never show up in carla's search.
      await createPatient(p, u.colin, { givenName: 'Ann', familyName: family });
    });

    async function search(q: string): Promise<string[]> {
      const res = await p.api('GET', `${PATIENTS}?${new URLSearchParams({ q, limit: '100' })}`, { key: u.carla.apiKey });
      assert.equal(res.status, 200, JSON.stringify(res.body));
      return (res.body.items as Listed[]).map((x) => x.id).sort();
    }
    const expect = (...names: (keyof typeof ids)[]) => names.map((n) => ids[n]).sort();

    it('finds by a prefix of the family name, case-insensitively', async () => {
      assert.deepEqual(await search(family.toUpperCase()), expect('ann', 'annabel', 'maryAnn', 'bob'));
      assert.deepEqual(await search(`${family.toLowerCase()}so`), expect('bob'));
    });

    it('finds by a prefix of the given name', async () => {
      const mine = async (q: string) => (await search(q)).filter((id) => Object.values(ids).includes(id));
      assert.deepEqual(await mine('annab'), expect('annabel'));
      assert.deepEqual(await mine('mary a'), expect('maryAnn'));
    });

    it('finds "family, given" and "given family"', async () => {
      assert.deepEqual(await search(`${family}, ann`), expect('ann', 'annabel'));
      assert.deepEqual(await search(`${family.toLowerCase()},annabel`), expect('annabel'));
      assert.deepEqual(await search(`ann ${family}`), expect('ann', 'annabel'));
      assert.deepEqual(await search(`Mary Ann ${family.slice(0, 6)}`), expect('maryAnn'));
      assert.deepEqual(await search(`annabel ${family} van`), expect('annabel'));
      assert.deepEqual(await search(`  bob   ${family}  `), expect('bob'));
    });

    it('treats LIKE wildcards as plain characters', async () => {
      assert.deepEqual(await search(`${family.slice(0, 4)}%`), []);
      assert.deepEqual(await search('_'), []);
    });
  });

  describe('sorting and paging', () => {
    let family: string;
    let mine: Listed[];

    before(async () => {
      family = marker('Px');
      const people: [string, string, string][] = [
        ['Cleo', 'b', '1990-03-01'],
        ['adam', 'a', '1975-07-20'],
        ['Bea', 'c', '2001-01-31'],
        ['dora', 'a', '1990-03-01'],
        ['Eli', 'B', '1960-11-11'],
        ['Fay', 'd', '1990-03-01'],
        ['gus', 'e', '2010-06-06'],
      ];
      for (const [given, suffix, dob] of people) {
        await createPatient(p, u.carla, { givenName: given, familyName: `${family}${suffix}`, dateOfBirth: dob });
      }
      await createPatient(p, u.colin, { givenName: 'Hidden', familyName: `${family}a`, dateOfBirth: '1990-03-01' });
      const res = await p.api('GET', `${PATIENTS}?${new URLSearchParams({ q: family, limit: '100' })}`, { key: u.carla.apiKey });
      mine = res.body.items;
      assert.equal(mine.length, people.length);
      assert.equal(res.body.total, people.length);
      assert.equal(res.body.nextCursor, null);
    });

    const lower = (s: string) => s.toLowerCase();
    const cmp = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);
    const orders: Record<string, (a: Listed, b: Listed) => number> = {
      family_name: (a, b) =>
        cmp(lower(a.familyName), lower(b.familyName)) || cmp(lower(a.givenName), lower(b.givenName)) || cmp(a.id, b.id),
      given_name: (a, b) => cmp(lower(a.givenName), lower(b.givenName)) || cmp(lower(a.familyName), lower(b.familyName)) || cmp(a.id, b.id),
      date_of_birth: (a, b) => cmp(a.dateOfBirth, b.dateOfBirth) || cmp(a.id, b.id),
      created_at: (a, b) => cmp(a.createdAt, b.createdAt) || cmp(a.id, b.id),
    };

    for (const [field, order] of Object.entries(orders)) {
      for (const desc of [false, true]) {
        const sort = `${desc ? '-' : ''}${field}`;
        it(`pages through sort=${sort} three at a time without duplicates or gaps, in order`, async () => {
          const { pages, totals } = await allPages(u.carla, { q: family, sort, limit: '3' });
          assert.deepEqual(
            pages.map((page) => page.length),
            [3, 3, 1],
          );
          assert.ok(totals.every((t) => t === mine.length));
          const seen = pages.flat().map((x) => x.id);
          assert.equal(new Set(seen).size, seen.length, 'no patient twice');
          const expected = [...mine].sort(order);
          if (desc) expected.reverse();
          assert.deepEqual(
            seen,
            expected.map((x) => x.id),
          );
        });
      }
    }

    it('sorts by updated_at, so a changed patient moves to the end', async () => {
      const changed = mine[2];
      await p.api('PATCH', patientUrl(changed.id), { key: u.carla.apiKey, body: { givenName: 'Changed' } });
      const { pages } = await allPages(u.carla, { q: family, sort: 'updated_at', limit: '4' });
      assert.equal(pages.flat().at(-1)!.id, changed.id);
      const { pages: newest } = await allPages(u.carla, { q: family, sort: '-updated_at', limit: '4' });
      assert.equal(newest[0][0].id, changed.id);
    });

    it('keeps paging correctly when a patient is added between pages', async () => {
      const first = await p.api('GET', `${PATIENTS}?${new URLSearchParams({ q: family, sort: 'family_name', limit: '3' })}`, {
        key: u.carla.apiKey,
      });
      await createPatient(p, u.carla, { givenName: 'Aaron', familyName: `${family}a` });
      const rest = await allPages(u.carla, { q: family, sort: 'family_name', limit: '3', cursor: first.body.nextCursor });
      const seen = [...first.body.items, ...rest.pages.flat()].map((x: Listed) => x.id);
      assert.equal(new Set(seen).size, seen.length, 'no patient twice');
      for (const x of mine) assert.ok(seen.includes(x.id), 'no patient skipped');
    });

    it('defaults to 20 items and refuses more than 100 a page', async () => {
      const res = await p.api('GET', PATIENTS, { key: u.carla.apiKey });
      assert.equal(res.body.limit, 20);
      assert.equal(res.body.sort, 'family_name');
      assert.ok(res.body.items.length <= 20);
      const tooMany = await p.api('GET', `${PATIENTS}?limit=101`, { key: u.carla.apiKey });
      assert.equal(tooMany.status, 400);
    });

    it('refuses a cursor under another sort, and a cursor that is not one', async () => {
      const first = await p.api('GET', `${PATIENTS}?${new URLSearchParams({ q: family, sort: 'family_name', limit: '2' })}`, {
        key: u.carla.apiKey,
      });
      const other = await p.api('GET', `${PATIENTS}?${new URLSearchParams({ sort: 'given_name', cursor: first.body.nextCursor })}`, {
        key: u.carla.apiKey,
      });
      assert.equal(other.status, 400);
      assert.equal(other.body.errors[0].field, 'query.cursor');
      const junk = await p.api('GET', `${PATIENTS}?cursor=not-a-cursor`, { key: u.carla.apiKey });
      assert.equal(junk.status, 400);
    });

    it("refuses a cursor naming someone else's patient, so positions cannot probe their names", async () => {
      const theirs = await createPatient(p, u.colin, { familyName: `${family}zz` });
      const forged = Buffer.from(JSON.stringify({ s: 'family_name', id: theirs.id })).toString('base64url');
      const res = await p.api('GET', `${PATIENTS}?${new URLSearchParams({ cursor: forged })}`, { key: u.carla.apiKey });
      assert.equal(res.status, 409);
      assert.equal(res.body.type, 'urn:labflow:problem:cursor-expired');
    });
  });
});
