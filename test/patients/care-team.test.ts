import assert from 'node:assert/strict';
import { startPlatform, type Platform } from '../helpers/platform';
import { makeUsers, type TestUser } from '../helpers/users';
import { waitFor } from '../helpers/wait';
import { testEnv } from '../setup/env';
import { auditOf, createPatient, marker, patientUrl, refused } from './support';

const team = (id: string) => `${patientUrl(id)}/clinicians`;
/** The subject as written, unfolded: a patient's ID makes it longer than one header line. */
const subjectOf = (raw: string) => /^Subject:\s*(.+)$/im.exec(raw.replace(/\r?\n[ \t]+/g, ' '))?.[1] ?? '';

describe('who joins a care team: a clinician of the team adds or confirms; an admin asks, or uses audited break-glass', () => {
  let p: Platform;
  let u: Record<'carla' | 'colin' | 'cleo' | 'admin' | 'pria' | 'ivy', TestUser>;

  before(async () => {
    p = await startPlatform();
    u = await makeUsers({
      carla: ['clinician'],
      colin: ['clinician'],
      cleo: ['clinician'],
      admin: ['admin'],
      pria: ['privacy_officer'],
      ivy: ['privacy_officer'],
    });
  });
  after(() => p.stop());

  const read = (who: TestUser, id: string) => p.api('GET', patientUrl(id), { key: who.apiKey });

  it("keeps an admin's addition pending until a clinician of the team confirms it", async () => {
    const patient = await createPatient(p, u.carla);
    const asked = await p.api('POST', team(patient.id), { key: u.admin.apiKey, body: { username: u.colin.username } });
    assert.equal(asked.status, 202, JSON.stringify(asked.body));
    assert.equal(asked.body.request.state, 'pending');
    assert.equal(asked.body.request.username, u.colin.username);
    assert.equal(asked.headers.get('location'), asked.body.request.location);
    assert.deepEqual(
      asked.body.clinicians.map((c: { username: string }) => c.username),
      [u.carla.username],
      'not on the team yet',
    );
    assert.equal((await read(u.colin, patient.id)).status, 403, 'a pending member reads nothing');

    // Asking again finds the same request.
    const again = await p.api('POST', team(patient.id), { key: u.admin.apiKey, body: { username: u.colin.username } });
    assert.equal(again.status, 200);
    assert.equal(again.body.request.id, asked.body.request.id);

    // Neither the admin, nor the clinician being added, nor a clinician of another team may confirm.
    for (const who of [u.admin, u.colin, u.cleo]) {
      const res = await refused(() => p.api('POST', `${asked.body.request.location}/confirm`, { key: who.apiKey }));
      assert.equal(res.status, 403, `${who.username}: ${JSON.stringify(res.body)}`);
    }
    const confirmed = await p.api('POST', `${asked.body.request.location}/confirm`, { key: u.carla.apiKey });
    assert.equal(confirmed.status, 200, JSON.stringify(confirmed.body));
    assert.equal(confirmed.body.request.state, 'confirmed');
    assert.equal(confirmed.body.request.decidedBy, u.carla.username);
    const colin = confirmed.body.clinicians.find((c: { username: string }) => c.username === u.colin.username);
    assert.deepEqual([colin.access, colin.addedBy, colin.confirmedBy], ['confirmed', u.admin.username, u.carla.username]);
    assert.deepEqual(confirmed.body.pending, []);
    assert.equal((await read(u.colin, patient.id)).status, 200);

    const twice = await p.api('POST', `${asked.body.request.location}/confirm`, { key: u.carla.apiKey });
    assert.equal(twice.status, 409);
    assert.equal(twice.body.type, 'urn:labflow:problem:request-decided');
    const unknown = await p.api('POST', `${team(patient.id)}/requests/00000000-0000-4000-8000-000000000000/confirm`, { key: u.carla.apiKey });
    assert.equal(unknown.status, 404);

    assert.deepEqual(
      (await auditOf([patient.id])).map((e) => [e.action, e.actor]),
      [
        ['patient.created', u.carla.username],
        ['patient.clinician_requested', u.admin.username],
        ['patient.clinician_confirmed', u.carla.username],
      ],
    );
  });

  it('lets a clinician of the team add a colleague at once, without break-glass', async () => {
    const patient = await createPatient(p, u.carla);
    const glass = await refused(() =>
      p.api('POST', team(patient.id), {
        key: u.carla.apiKey,
        body: { username: u.colin.username, breakGlass: { reason: 'Emergency cover tonight' } },
      }),
    );
    assert.equal(glass.status, 422);
    const added = await p.api('POST', team(patient.id), { key: u.carla.apiKey, body: { username: u.colin.username } });
    assert.equal(added.status, 201);
    assert.equal(added.body.clinicians.find((c: { username: string }) => c.username === u.colin.username).access, 'clinician');
  });

  it('adds at once with break-glass and a reason: audited, and every privacy officer is alerted by email', async () => {
    const family = marker();
    const patient = await createPatient(p, u.carla, { familyName: family });
    const noReason = await refused(() => p.api('POST', team(patient.id), { key: u.admin.apiKey, body: { username: u.cleo.username, breakGlass: {} } }));
    assert.equal(noReason.status, 400, JSON.stringify(noReason.body));
    const tooShort = await refused(() =>
      p.api('POST', team(patient.id), { key: u.admin.apiKey, body: { username: u.cleo.username, breakGlass: { reason: 'urgent' } } }),
    );
    assert.equal(tooShort.status, 400);
    const self = await refused(() =>
      p.api('POST', team(patient.id), {
        key: u.admin.apiKey,
        body: { username: u.admin.username, breakGlass: { reason: 'I need to look at this record' } },
      }),
    );
    assert.equal(self.status, 403);

    const reason = 'Carla is on leave and the patient is in the emergency department';
    const glass = await p.api('POST', team(patient.id), { key: u.admin.apiKey, body: { username: u.cleo.username, breakGlass: { reason } } });
    assert.equal(glass.status, 201, JSON.stringify(glass.body));
    const cleo = glass.body.clinicians.find((c: { username: string }) => c.username === u.cleo.username);
    assert.equal(cleo.access, 'break_glass');
    assert.equal((await read(u.cleo, patient.id)).status, 200, 'the clinician reads the record at once');

    const [event] = (await auditOf([patient.id])).filter((e) => e.action === 'patient.care_team_break_glass');
    assert.equal(event.actor, u.admin.username);
    assert.equal(event.details.username, u.cleo.username);
    assert.equal(event.details.breakGlassId, glass.body.breakGlass.id);

    // Every privacy officer hears of it, in the inbox and by email, without the patient's name.
    for (const officer of [u.pria, u.ivy]) {
      const mail = await waitFor(
        async () =>
          testEnv().mails.find((m) => m.to.some((to) => to.includes(officer.username)) && subjectOf(m.raw).includes(patient.id)) ?? null,
        `the break-glass email to ${officer.username}`,
      );
      assert.ok(!mail.raw.includes(family), 'the email names no patient');
      assert.ok(!mail.raw.includes('emergency department'), 'the reason stays in labflow');
      const inbox = await testEnv().db('notifications').where({ user_id: officer.actor.userId, kind: 'patient.care_team_break_glass' });
      assert.equal(inbox.length, 1);
    }

    // The privacy officer reads the reason in labflow; others may not.
    const log = await p.api('GET', `${patientUrl(patient.id)}/break-glass`, { key: u.pria.apiKey });
    assert.equal(log.status, 200, JSON.stringify(log.body));
    assert.deepEqual(
      log.body.items.map((e: { username: string; addedBy: string; reason: string }) => [e.username, e.addedBy, e.reason]),
      [[u.cleo.username, u.admin.username, reason]],
    );
    for (const who of [u.admin, u.carla]) {
      assert.equal((await p.api('GET', `${patientUrl(patient.id)}/break-glass`, { key: who.apiKey })).status, 403);
    }

    // Adding someone already on the team writes nothing and alerts no one. What is queued is counted, not what has
    // arrived: every privacy officer in the shared test database is mailed (other files add some), and their mails
    // may still be arriving; only this patient's are counted.
    const aboutPatient = async () =>
      Number((await testEnv().db('email_outbox').whereLike('subject', `%${patient.id}%`).count('* as n').first())?.n);
    const mailsBefore = await aboutPatient();
    const again = await refused(() =>
      p.api('POST', team(patient.id), { key: u.admin.apiKey, body: { username: u.cleo.username, breakGlass: { reason } } }),
    );
    assert.equal(again.status, 200);
    assert.equal(again.body.breakGlass, null);
    assert.equal(await aboutPatient(), mailsBefore);
  });
});
