import assert from 'node:assert/strict';
import { startPlatform, type Platform } from '../helpers/platform';
import { makeUsers, type TestUser } from '../helpers/users';
import { testEnv } from '../setup/env';
import { createCapa, inHours, toImplementation } from '../capa/support';
import { inspected, mustAct, PATIENT } from '../sample-intake/support';
import { assertCompleteTrail, csvRows, csvTrail, download, pdfText, pdfTrail, printedUtc, trailOf } from './support';

describe('a CAPA and a sample exported with their signatures, custody and trails', () => {
  let p: Platform;
  let u: Record<'qa' | 'owner' | 'tech' | 'director' | 'doc' | 'stranger' | 'control', TestUser>;

  before(async () => {
    p = await startPlatform();
    u = await makeUsers({
      qa: ['qa_manager'],
      owner: ['lab_technician'],
      tech: ['lab_technician'],
      director: ['lab_director'],
      doc: ['clinician'],
      stranger: ['clinician'],
      control: ['document_control'],
    });
  });
  after(() => p.stop());

  const signaturesOf = (entityType: string, entityId: string) =>
    testEnv().db('signatures').where({ entity_type: entityType, entity_id: entityId }).orderBy('signed_at');

  it("prints a CAPA's stage, its plan approval signature and its whole trail; QA only", async () => {
    const { number } = await createCapa(p, u.doc);
    await toImplementation(p, u, number, [
      { type: 'correction', description: 'Re-draw affected patients', owner: { user: u.owner.username }, dueAt: inHours(48) },
    ]);
    const [signed] = await signaturesOf('capa', number);
    assert.ok(signed, 'the plan approval is signed');
    const trail = await trailOf('capa', number);

    const pdf = await download(p, u.qa, `/api/v1/capas/${number}/export?format=pdf`);
    assert.equal(pdf.status, 200);
    const text = await pdfText(pdf.bytes);
    assert.match(text, /State: implementation/);
    assert.ok(text.includes(`Signed by ${signed.printed_name} (${signed.username})`));
    assert.ok(text.includes(`Date and time: ${printedUtc(signed.signed_at)}`));
    assert.ok(text.includes(`Meaning: ${signed.meaning}`));
    const upToCopy = await assertCompleteTrail(pdfTrail(text), 'capa', number, trail);

    const csv = csvRows((await download(p, u.qa, `/api/v1/capas/${number}/export?format=csv`)).bytes);
    assert.equal(csv.find((r) => r.section === 'signature')?.by, signed.printed_name);
    await assertCompleteTrail(csvTrail(csv), 'capa', number, upToCopy);

    const refused = await download(p, u.control, `/api/v1/capas/${number}/export?format=csv`);
    assert.equal(refused.status, 403);
    assert.doesNotMatch(refused.bytes.toString('utf8'), /section,item/);
    const attempts = await testEnv()
      .db('audit_events')
      .where({ entity_type: 'capa', entity_id: number, actor: u.control.username })
      .pluck('action');
    assert.deepEqual(attempts, ['record.export_refused']);
  });

  it("prints a sample's patient identification, custody and signed deviation; a PHI access event each time", async () => {
    const { accession, state } = await inspected(p, u.doc, u.tech, {}, { hemolyzed: true });
    await mustAct(p, u.director, accession, 'accept-with-deviation', {
      comment: 'Mild hemolysis; potassium reported with a comment',
      signature: { password: u.director.password, meaning: 'approval', contentHash: state.process.inspection.contentHash },
    });
    const [signed] = await signaturesOf('sample', accession);
    const custody = await testEnv().db('sample_custody_events').where({ accession }).orderBy('id');
    assert.ok(custody.length > 0);
    const trail = await trailOf('sample', accession);

    const res = await download(p, u.tech, `/api/v1/samples/${accession}/export?format=pdf`);
    assert.equal(res.status, 200);
    const text = await pdfText(res.bytes);
    assert.ok(text.includes(`Patient MRN: ${PATIENT.mrn}`));
    assert.ok(text.includes(`Signed by ${signed.printed_name} (${signed.username})`));
    assert.ok(text.includes(`Date and time: ${printedUtc(signed.signed_at)}`));
    assert.ok(text.includes('Meaning: approval'));
    const printedCustody = Number(/Chain of custody \((\d+) events\)/.exec(text)![1]);
    assert.ok(printedCustody >= custody.length);
    assert.ok(text.includes(`${custody[0].event} by ${custody[0].actor}`));
    await assertCompleteTrail(pdfTrail(text), 'sample', accession, trail);

    const db = testEnv().db;
    const reads = await db('phi_access_events').where({ username: u.tech.username, record_kind: 'sample_export' });
    assert.equal(reads.length, 1);
    assert.equal(reads[0].outcome, 'read');
    assert.deepEqual(reads[0].record_ids, [accession]);

    // A clinician who did not submit the sample: refused, nothing generated, audited and logged as a denied PHI access.
    const refused = await download(p, u.stranger, `/api/v1/samples/${accession}/export?format=pdf`);
    assert.equal(refused.status, 403);
    assert.notEqual(refused.bytes.subarray(0, 5).toString('latin1'), '%PDF-');
    assert.deepEqual(
      await db('audit_events').where({ entity_type: 'sample', entity_id: accession, actor: u.stranger.username }).pluck('action'),
      ['record.export_refused'],
    );
    const denied = await db('phi_access_events').where({ username: u.stranger.username }).pluck('outcome');
    assert.deepEqual(denied, ['denied']);

    // The submitter may export, and read the trail page by page.
    assert.equal((await download(p, u.doc, `/api/v1/samples/${accession}/export?format=json`)).status, 200);
    const page = await p.api('GET', `/api/v1/samples/${accession}/audit-trail?limit=2`, { key: u.doc.apiKey });
    assert.equal(page.status, 200);
    assert.deepEqual(
      page.body.items.map((e: { seq: number }) => e.seq),
      trail.slice(0, 2).map((e) => Number(e.seq)),
    );
    assert.equal(page.body.next, Number(trail[1].seq));
    assert.equal((await p.api('GET', `/api/v1/samples/${accession}/audit-trail`, { key: u.stranger.apiKey })).status, 403);
  });

  it("pages a user's trail for admins and answers 404 for an unknown record", async () => {
    const admin = (await makeUsers({ admin: ['admin'] })).admin;
    const res = await p.api('GET', `/api/v1/users/${u.qa.username}/audit-trail`, { key: admin.apiKey });
    assert.equal(res.status, 200, JSON.stringify(res.body));
    assert.ok(res.body.items.length > 0);
    assert.equal((await p.api('GET', `/api/v1/users/${u.qa.username}/audit-trail`, { key: u.qa.apiKey })).status, 403);
    assert.equal((await p.api('GET', '/api/v1/capas/CAPA-1999-0001/export?format=pdf', { key: u.qa.apiKey })).status, 404);
    assert.equal((await p.api('GET', '/api/v1/samples/ACC-99999999/export', { key: u.tech.apiKey })).status, 404);
    assert.equal((await p.api('GET', '/api/v1/capas/CAPA-1999-0001/export?format=docx', { key: u.qa.apiKey })).status, 400);
  });
});
