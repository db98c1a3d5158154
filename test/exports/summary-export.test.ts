import assert from 'node:assert/strict';
import { makeUsers, type TestUser } from '../helpers/users';
import { testEnv } from '../setup/env';
import { jobUrl, patientWithNotes, readySummary, startSummaryRig, type SummaryRig } from '../soap-summary/support';
import { csvRows, download, pdfText, printedUtc } from './support';

const phiEvents = (patientId: string, kind: string) =>
  testEnv()
    .db('phi_access_events as e')
    .join('phi_access_event_patients as p', 'p.event_id', 'e.id')
    .where({ 'p.patient_id': patientId, 'e.record_kind': kind })
    .orderBy('e.occurred_at')
    .select('e.username', 'e.outcome', 'e.record_ids');

describe("a SOAP-note summary's complete copy, and a patient's audit trail", () => {
  let rig: SummaryRig;
  let other: Record<'outsider' | 'admin', TestUser>;
  before(async () => {
    rig = await startSummaryRig();
    other = await makeUsers({ outsider: ['clinician'], admin: ['admin'] });
  });
  after(() => rig.stop());

  it('prints the approved summary with its provenance, the signature manifested and only its own job’s trail; a PHI read each time', async () => {
    const patient = await patientWithNotes(rig);
    const { jobId, summary } = await readySummary(rig, patient.id);
    const approved = await rig.p.api('POST', `${jobUrl(jobId)}/review`, {
      key: rig.doc.apiKey,
      body: { decision: 'approve', signature: { password: rig.doc.password, meaning: 'approval', contentHash: summary.contentHash } },
    });
    assert.equal(approved.status, 200, JSON.stringify(approved.body));
    const [signed] = await testEnv().db('signatures').where({ entity_type: 'soap-summary', entity_id: summary.id });
    assert.ok(signed, 'the approval is signed');

    const pdf = await download(rig.p, rig.doc, `${jobUrl(jobId)}/export?format=pdf`);
    assert.equal(pdf.status, 200);
    const text = await pdfText(pdf.bytes);
    assert.ok(text.replace(/\s+/g, '').includes(jobId), text.slice(0, 1500));
    assert.match(text, /AI-generated: yes/);
    assert.ok(text.includes(`Signed by ${signed.printed_name} (${signed.username})`));
    assert.ok(text.includes(`Date and time: ${printedUtc(signed.signed_at)}`));
    assert.ok(text.includes('Meaning: approval'));
    assert.match(text, /lisinopril/, 'the summary text itself is in the copy');

    const json = await rig.p.api('GET', `${jobUrl(jobId)}/export?format=json`, { key: rig.doc.apiKey });
    assert.equal(json.status, 200);
    const jobEvents = await testEnv()
      .db('audit_events')
      .where({ entity_type: 'patient', entity_id: patient.id })
      .whereRaw("details ->> 'workflowId' = ?", [jobId])
      .orderBy('seq')
      .pluck('action');
    const printed = (json.body.trail as { action: string; details: { workflowId?: string } }[]).map((e) => e.action);
    assert.deepEqual(printed, jobEvents.slice(0, printed.length), 'the trail is the job’s own, in order, without a gap');
    assert.ok(printed.includes('summary.requested') && printed.includes('summary.approved'));
    assert.ok(
      (json.body.trail as { details: { workflowId?: string } }[]).every((e) => e.details.workflowId === jobId),
      'no event of the patient record itself',
    );
    const patientTrail = await testEnv().db('audit_events').where({ entity_type: 'patient', entity_id: patient.id }).pluck('action');
    assert.ok(patientTrail.includes('patient.created') && !printed.includes('patient.created'));

    const csv = csvRows((await download(rig.p, rig.doc, `${jobUrl(jobId)}/export?format=csv`)).bytes);
    assert.equal(csv.find((r) => r.section === 'signature')?.by, signed.printed_name);

    const reads = await phiEvents(patient.id, 'summary_export');
    assert.equal(reads.length, 3, 'each of the three copies is a PHI read');
    assert.ok(reads.every((r) => r.username === rig.doc.username && r.outcome === 'read' && r.record_ids.includes(jobId)));
    const exported = await testEnv()
      .db('audit_events')
      .where({ entity_type: 'patient', entity_id: patient.id, action: 'record.exported' })
      .pluck('details');
    assert.equal(exported.length, 3);
    assert.ok(exported.every((d: { recordId: string; kind: string }) => d.recordId === jobId && d.kind === 'summary'));
  });

  it('refuses a clinician off the care team and an admin: 403, nothing generated, audited and logged as a denied PHI read', async () => {
    const patient = await patientWithNotes(rig);
    const { jobId } = await readySummary(rig, patient.id);
    for (const who of [other.outsider, other.admin]) {
      const refused = await download(rig.p, who, `${jobUrl(jobId)}/export?format=pdf`);
      assert.equal(refused.status, 403);
      assert.notEqual(refused.bytes.subarray(0, 5).toString('latin1'), '%PDF-');
    }
    const refusals = await testEnv()
      .db('audit_events')
      .where({ entity_type: 'patient', entity_id: patient.id, action: 'record.export_refused' })
      .orderBy('seq')
      .pluck('actor');
    assert.deepEqual(refusals, [other.outsider.username, other.admin.username]);
    const denied = await phiEvents(patient.id, 'summary_export');
    assert.deepEqual(
      denied.map((d) => [d.username, d.outcome]),
      [
        [other.outsider.username, 'denied'],
        [other.admin.username, 'denied'],
      ],
    );
    assert.equal((await download(rig.p, rig.doc, `${jobUrl(`soap-summary:00000000-0000-4000-8000-000000000000:${'0'.repeat(32)}`)}/export`)).status, 404);
  });

  it("pages a patient's audit trail for its care team, each page a PHI read, and refuses anyone else", async () => {
    const patient = await patientWithNotes(rig);
    const trail = await testEnv().db('audit_events').where({ entity_type: 'patient', entity_id: patient.id }).orderBy('seq').select('seq', 'action');
    assert.ok(trail.length >= 1, 'creating the patient is on its trail');
    const first = await rig.p.api('GET', `/api/v1/patients/${patient.id}/audit-trail?limit=1`, { key: rig.doc.apiKey });
    assert.equal(first.status, 200, JSON.stringify(first.body));
    assert.deepEqual(
      first.body.items.map((e: { seq: number }) => e.seq),
      [Number(trail[0].seq)],
    );
    const all: number[] = [];
    let after: number | null = 0;
    while (after !== null) {
      const page: { status: number; body: { items: { seq: number }[]; next: number | null } } = await rig.p.api(
        'GET',
        `/api/v1/patients/${patient.id}/audit-trail?limit=2&after=${after}`,
        { key: rig.doc.apiKey },
      );
      assert.equal(page.status, 200);
      all.push(...page.body.items.map((e) => e.seq));
      after = page.body.next;
    }
    assert.deepEqual(
      all.slice(0, trail.length),
      trail.map((e) => Number(e.seq)),
    );
    const reads = await phiEvents(patient.id, 'audit_trail');
    assert.ok(reads.length >= 2 && reads.every((r) => r.outcome === 'read' && r.username === rig.doc.username));

    for (const who of [other.outsider, other.admin]) {
      const refused = await rig.p.api('GET', `/api/v1/patients/${patient.id}/audit-trail`, { key: who.apiKey });
      assert.equal(refused.status, 403);
      assert.equal(refused.body.items, undefined);
    }
    const denied = await phiEvents(patient.id, 'audit_trail');
    assert.deepEqual(
      denied.filter((d) => d.outcome === 'denied').map((d) => d.username),
      [other.outsider.username, other.admin.username],
    );
  });
});
