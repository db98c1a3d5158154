import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { startPlatform, type Platform } from '../helpers/platform';
import { makeUsers, type TestUser } from '../helpers/users';
import { testEnv } from '../setup/env';
import { addNote, auditOf, createPatient, notesUrl, patientUrl } from './support';

/** A finished summary job of the patient's notes with one summary, signed by `signer` when given. */
async function summaryOf(patientId: string, requestedBy: TestUser, notes: { id: string; contentHash: string }[], signer?: TestUser) {
  const { db } = testEnv();
  const workflowId = `soap-summary:${patientId}:${randomBytes(16).toString('hex')}`;
  await db('summary_jobs').insert({
    workflow_id: workflowId,
    patient_id: patientId,
    notes_hash: 'f'.repeat(32),
    note_ids: notes.map((n) => n.id),
    note_hashes: notes.map((n) => n.contentHash),
    stage: signer ? 'approved' : 'rejected',
    providers: ['extractive'],
    requested_by: requestedBy.actor.userId,
  });
  const [attempt] = await db('summary_attempts')
    .insert({ idempotency_key: `${workflowId}:1:1:1`, workflow_id: workflowId, round: 1, provider: 'extractive', outcome: 'succeeded', started_at: new Date() })
    .returning('id');
  const [summary] = await db('summaries')
    .insert({
      workflow_id: workflowId,
      round: 1,
      patient_id: patientId,
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
      content_hash: 'c'.repeat(64),
      status: signer ? 'approved' : 'rejected',
      review_decision: signer ? 'approve' : 'reject',
      reviewed_by: (signer ?? requestedBy).actor.userId,
      reviewed_at: new Date(),
    })
    .returning('id');
  if (signer) {
    await db('signatures').insert({
      idempotency_key: `${workflowId}:signature`,
      entity_type: 'soap-summary',
      entity_id: summary.id,
      workflow_id: workflowId,
      round: 1,
      stage_index: 0,
      stage_name: 'review',
      user_id: signer.actor.userId,
      username: signer.username,
      printed_name: signer.actor.printedName,
      meaning: 'approval',
      signed_at: new Date(),
      content_hash: 'c'.repeat(64),
    });
  }
  return { workflowId, summaryId: summary.id as string };
}

describe('a patient with signed summaries is retired, not deleted; a legal hold blocks retirement and purge', () => {
  let p: Platform;
  let u: Record<'carla' | 'pria' | 'admin', TestUser>;

  before(async () => {
    p = await startPlatform({ withWorker: false });
    u = await makeUsers({ carla: ['clinician'], pria: ['privacy_officer'], admin: ['admin'] });
  });
  after(() => p.stop());

  const del = (id: string) => p.api('DELETE', patientUrl(id), { key: u.carla.apiKey });
  const count = async (table: string, patientId: string) =>
    Number((await testEnv().db(table).where({ patient_id: patientId }).count('* as n').first())?.n ?? 0);

  it('retires a patient with a signed summary: 200 with the retention date, everything kept, and the record read-only', async () => {
    const patient = await createPatient(p, u.carla);
    const notes = [await addNote(p, u.carla, patient.id), await addNote(p, u.carla, patient.id)];
    const { summaryId } = await summaryOf(patient.id, u.carla, notes, u.carla);

    const res = await del(patient.id);
    assert.equal(res.status, 200, JSON.stringify(res.body));
    assert.equal(res.body.status, 'retired');
    assert.equal(res.body.signedSummaries, 1);
    assert.deepEqual([res.body.rule.recordType, res.body.rule.keepYears], ['signed_summary', 10]);
    const years = (Date.parse(res.body.retainUntil) - Date.now()) / (365.25 * 86_400_000);
    assert.ok(years > 9.9 && years < 10.1, `kept about ten years from the signature (${res.body.retainUntil})`);

    for (const table of ['patients', 'soap_notes', 'soap_note_versions', 'summary_jobs', 'summaries', 'patient_clinicians']) {
      const n = table === 'patients' ? (await testEnv().db('patients').where({ id: patient.id })).length : await count(table, patient.id);
      assert.ok(n > 0, `${table} kept`);
    }
    assert.equal((await testEnv().db('signatures').where({ entity_id: summaryId })).length, 1, 'the signature kept');

    // Still readable by the care team, showing the retirement; no more changes.
    const read = await p.api('GET', patientUrl(patient.id), { key: u.carla.apiKey });
    assert.equal(read.status, 200);
    assert.equal(read.body.retired.retainUntil, res.body.retainUntil);
    const writes = [
      p.api('PATCH', patientUrl(patient.id), { key: u.carla.apiKey, body: { phone: '+1 555 010 0000' } }),
      p.api('POST', notesUrl(patient.id), {
        key: u.carla.apiKey,
        body: { subjective: 'Late entry', noteTime: new Date(Date.now() - 60_000).toISOString() },
      }),
      p.api('DELETE', `${notesUrl(patient.id)}/${notes[0].id}`, { key: u.carla.apiKey }),
      p.api('POST', `${patientUrl(patient.id)}/summaries`, { key: u.carla.apiKey, body: {} }),
    ];
    for (const w of await Promise.all(writes)) {
      assert.equal(w.status, 409, JSON.stringify(w.body));
      assert.equal(w.body.type, 'urn:labflow:problem:patient-retired');
    }

    // Deleting again before the retention date is refused with the date.
    const again = await del(patient.id);
    assert.equal(again.status, 409);
    assert.equal(again.body.type, 'urn:labflow:problem:retention-period');
    assert.equal(again.body.retainUntil, res.body.retainUntil);

    const retired = (await auditOf([patient.id])).filter((e) => e.action === 'patient.retired');
    assert.equal(retired.length, 1);
    assert.equal(retired[0].details.signedSummaries, 1);

    // Once the retention date has passed, the retired record is purged.
    await testEnv()
      .db('patients')
      .where({ id: patient.id })
      .update({ retired_at: testEnv().db.raw(`now() - interval '11 years'`), retain_until: testEnv().db.raw(`now() - interval '1 day'`) });
    assert.equal((await del(patient.id)).status, 204);
    assert.equal((await testEnv().db('patients').where({ id: patient.id })).length, 0);
    assert.equal(await count('summaries', patient.id), 0);
  });

  it('deletes a patient whose summaries carry no signature, as before', async () => {
    const patient = await createPatient(p, u.carla);
    const note = await addNote(p, u.carla, patient.id);
    await summaryOf(patient.id, u.carla, [note]);
    assert.equal((await del(patient.id)).status, 204);
    assert.equal((await testEnv().db('patients').where({ id: patient.id })).length, 0);
    assert.equal(await count('soap_note_versions', patient.id), 0);
  });

  it('refuses retirement and deletion under a legal hold, which only the privacy officer sets and lifts', async () => {
    const signed = await createPatient(p, u.carla);
    const note = await addNote(p, u.carla, signed.id);
    await summaryOf(signed.id, u.carla, [note], u.carla);
    const unsigned = await createPatient(p, u.carla);

    for (const who of [u.carla, u.admin]) {
      const res = await p.api('PUT', `${patientUrl(signed.id)}/legal-hold`, { key: who.apiKey, body: { hold: true, reason: 'Matter 2026-17' } });
      assert.equal(res.status, 403, who.username);
    }
    const bad = await p.api('PUT', `${patientUrl(signed.id)}/legal-hold`, { key: u.pria.apiKey, body: { hold: true } });
    assert.equal(bad.status, 400);
    for (const patient of [signed, unsigned]) {
      const held = await p.api('PUT', `${patientUrl(patient.id)}/legal-hold`, {
        key: u.pria.apiKey,
        body: { hold: true, reason: 'Matter 2026-17' },
      });
      assert.equal(held.status, 200, JSON.stringify(held.body));
      assert.equal(held.body.legalHold, true);
      const res = await del(patient.id);
      assert.equal(res.status, 409, JSON.stringify(res.body));
      assert.equal(res.body.type, 'urn:labflow:problem:legal-hold');
      const row = await testEnv().db('patients').where({ id: patient.id }).first('retired_at');
      assert.ok(row, 'the patient is kept');
      assert.equal(row.retired_at, null, 'and not retired');
    }
    const retention = await p.api('GET', `${patientUrl(signed.id)}/retention`, { key: u.pria.apiKey });
    assert.equal(retention.status, 200);
    assert.equal(retention.body.legalHold, true);
    assert.equal(retention.body.signedSummaries, 1);
    assert.ok(retention.body.rules.some((r: { recordType: string }) => r.recordType === 'signed_summary'));

    // A retired record under hold cannot be purged either, even past its retention date.
    const lifted = await p.api('PUT', `${patientUrl(signed.id)}/legal-hold`, { key: u.pria.apiKey, body: { hold: false } });
    assert.equal(lifted.body.legalHold, false);
    assert.equal((await del(signed.id)).status, 200, 'retired once the hold is lifted');
    await testEnv().db('patients').where({ id: signed.id }).update({ retain_until: testEnv().db.raw(`now() - interval '1 day'`) });
    await p.api('PUT', `${patientUrl(signed.id)}/legal-hold`, { key: u.pria.apiKey, body: { hold: true, reason: 'Matter 2026-18' } });
    assert.equal((await del(signed.id)).body.type, 'urn:labflow:problem:legal-hold');
    assert.ok(await testEnv().db('patients').where({ id: signed.id }).first('id'));

    assert.deepEqual(
      (await auditOf([signed.id])).filter((e) => e.action.startsWith('patient.legal_hold') || e.action === 'patient.disposal_refused').map((e) => e.action),
      [
        'patient.legal_hold_set',
        'patient.disposal_refused',
        'patient.legal_hold_lifted',
        'patient.legal_hold_set',
        'patient.disposal_refused',
      ],
    );
  });
});
