import assert from 'node:assert/strict';
import { randomInt } from 'node:crypto';
import { startPlatform, type Platform } from '../helpers/platform';
import { makeUsers, type TestUser } from '../helpers/users';
import { waitFor } from '../helpers/wait';
import { testEnv } from '../setup/env';
import { createCapa, inHours, toImplementation } from '../capa/support';
import { register, PATIENT } from '../sample-intake/support';
import { assertCompleteTrail, csvTrail, download, pdfText, printedUtc, trailOf, type CsvRow } from './support';
import { parse } from 'csv-parse/sync';

type BundleRow = CsvRow & { record: string };

describe('bulk exports: every CAPA of a year, every sample of a month, as a run with progress and a download', () => {
  let p: Platform;
  let u: Record<'qa' | 'qa2' | 'owner' | 'tech' | 'doc' | 'control', TestUser>;
  // The shared test database holds every other file's CAPAs and samples, all made now: this file's records are
  // moved to a year of their own, so that its selections hold its records only.
  const year = randomInt(2100, 2900);
  const month = `${year}-03`;
  const LIMIT = 2;

  before(async () => {
    p = await startPlatform({ apiConfig: { bulkExports: { maxRecords: LIMIT } } });
    u = await makeUsers({
      qa: ['qa_manager'],
      qa2: ['qa_manager'],
      owner: ['lab_technician'],
      tech: ['lab_technician'],
      doc: ['clinician'],
      control: ['document_control'],
    });
  });
  after(() => p.stop());

  const db = () => testEnv().db;
  const start = (user: TestUser, body: unknown) => p.api('POST', '/api/v1/bulk-exports', { key: user.apiKey, body });
  const bulkTrail = (id: string) => db()('audit_events').where({ entity_type: 'bulk_export', entity_id: id }).orderBy('seq');

  async function finished(user: TestUser, id: string) {
    return waitFor(
      async () => {
        const res = await p.api('GET', `/api/v1/bulk-exports/${id}`, { key: user.apiKey });
        assert.equal(res.status, 200, JSON.stringify(res.body));
        return res.body.state === 'running' ? null : res.body;
      },
      `bulk export ${id} to finish`,
      60_000,
    );
  }

  async function exportOf(user: TestUser, body: Record<string, unknown>) {
    const res = await start(user, body);
    assert.equal(res.status, 202, JSON.stringify(res.body));
    assert.equal(res.headers.get('location'), `/api/v1/bulk-exports/${res.body.id}`);
    assert.equal(res.body.workflowId, `bulk-export:${res.body.id}`);
    const status = await finished(user, res.body.id);
    assert.equal(status.state, 'completed', JSON.stringify(status));
    return status as { id: string; total: number; done: number; download: string; sha256: string };
  }

  describe('CAPAs of a year', () => {
    let signed: string;
    let plain: string;
    before(async () => {
      signed = (await createCapa(p, u.doc, { title: `Mislabelled tubes ${year}` })).number;
      await toImplementation(p, u, signed, [
        { type: 'correction', description: 'Relabel the affected tubes', owner: { user: u.owner.username }, dueAt: inHours(48) },
      ]);
      plain = (await createCapa(p, u.doc, { title: `Late courier ${year}` })).number;
      await db()('capas')
        .whereIn('number', [signed, plain])
        .update({ initiated_at: db().raw(`initiated_at + make_interval(years => ?)`, [year - new Date().getUTCFullYear()]) });
    });

    it('prints every CAPA of the year into one PDF/A file with each signature and each whole trail; audited', async () => {
      const [signature] = await db()('signatures').where({ entity_type: 'capa', entity_id: signed });
      assert.ok(signature, 'the plan approval is signed');
      const status = await exportOf(u.qa, { kind: 'capas', year, format: 'pdf' });
      assert.equal(status.total, 2);
      assert.equal(status.done, 2);
      assert.equal(status.download, `/api/v1/bulk-exports/${status.id}/file`);

      const file = await download(p, u.qa, status.download);
      assert.equal(file.status, 200);
      assert.match(file.type, /application\/pdf/);
      const text = await pdfText(file.bytes);
      assert.ok(text.includes(`Bulk export: every CAPA initiated in ${year} (UTC)`));
      assert.ok(text.includes(`CAPA ${signed}: Mislabelled tubes ${year}`));
      assert.ok(text.includes(`CAPA ${plain}: Late courier ${year}`));
      assert.ok(text.includes(`Signed by ${signature.printed_name} (${signature.username})`));
      assert.ok(text.includes(`Date and time: ${printedUtc(signature.signed_at)}`));
      assert.ok(text.includes(`Meaning: ${signature.meaning}`));
      assert.match(text, /End of the bulk export: 2 records\./);
      // Each record's printed trail ends with its last event before the copy (the copy's own event comes after).
      for (const number of [signed, plain]) {
        const trail = (await trailOf('capa', number)).filter((e) => e.action !== 'record.exported');
        const last = trail[trail.length - 1];
        assert.match(text, new RegExp(`#${last.seq}\\s[^\\n]*${last.action.replace('.', '\\.')}`));
      }

      const trail = await bulkTrail(status.id);
      assert.deepEqual(
        trail.map((e) => e.action),
        ['bulk_export.started', 'bulk_export.completed', 'bulk_export.downloaded'],
      );
      assert.equal(trail[0].actor, u.qa.username);
      assert.deepEqual(trail[0].details, { kind: 'capas', period: String(year), format: 'pdf', records: 2, workflowId: `bulk-export:${status.id}` });
      assert.equal(trail[2].details.sha256, status.sha256);
      for (const number of [signed, plain]) {
        const copied = await db()('audit_events').where({ entity_type: 'capa', entity_id: number, action: 'record.exported' });
        assert.deepEqual(
          copied.map((e) => e.details.bulkExportId),
          [status.id],
        );
      }
    });

    it('writes the same CAPAs as one CSV table, a record column before the single export columns, trails complete', async () => {
      const status = await exportOf(u.qa, { kind: 'capas', year, format: 'csv' });
      const rows: BundleRow[] = parse((await download(p, u.qa, status.download)).bytes.toString('utf8'), { columns: true });
      assert.deepEqual(Object.keys(rows[0]), ['record', 'section', 'item', 'at_utc', 'by', 'what', 'detail']);
      assert.deepEqual([...new Set(rows.map((r) => r.record))].sort(), [signed, plain].sort());
      const [signature] = await db()('signatures').where({ entity_type: 'capa', entity_id: signed });
      const sig = rows.find((r) => r.record === signed && r.section === 'signature');
      assert.equal(sig?.by, signature.printed_name);
      assert.equal(sig?.at_utc, printedUtc(signature.signed_at));
      assert.equal(sig?.what, signature.meaning);
      for (const number of [signed, plain]) {
        const mine = rows.filter((r) => r.record === number);
        await assertCompleteTrail(csvTrail(mine), 'capa', number, (await trailOf('capa', number)).slice(0, 1));
      }
    });

    it('refuses a role that may not read CAPAs with 403, generating nothing, and audits the refusal', async () => {
      const res = await start(u.control, { kind: 'capas', year, format: 'pdf' });
      assert.equal(res.status, 403);
      assert.equal(await db()('bulk_exports').where({ requested_by: u.control.username }).first(), undefined);
      const refused = await db()('audit_events').where({ entity_type: 'bulk_export', actor: u.control.username });
      assert.deepEqual(
        refused.map((e) => [e.action, e.details.reason, e.details.period]),
        [['bulk_export.refused', 'forbidden', String(year)]],
      );
    });

    it('answers an export and its file to the person who asked only; another QA manager is refused and audited', async () => {
      const status = await exportOf(u.qa, { kind: 'capas', year, format: 'json' });
      const bundle = JSON.parse((await download(p, u.qa, status.download)).bytes.toString('utf8'));
      assert.equal(bundle.kind, 'bulk_export');
      assert.deepEqual(bundle.records.map((r: { entityId: string }) => r.entityId).sort(), [signed, plain].sort());
      assert.equal(bundle.generatedBy.username, u.qa.username);

      assert.equal((await p.api('GET', `/api/v1/bulk-exports/${status.id}`, { key: u.qa2.apiKey })).status, 403);
      const other = await download(p, u.qa2, status.download);
      assert.equal(other.status, 403);
      assert.ok(!other.bytes.toString('utf8').includes('bulk_export"'));
      const actions = (await bulkTrail(status.id)).map((e) => [e.action, e.actor]);
      assert.deepEqual(actions.slice(-1), [['bulk_export.download_refused', u.qa2.username]]);
    });
  });

  describe('samples of a month', () => {
    let accessions: string[];
    const moveToMonth = (list: string[]) =>
      db()('samples').whereIn('accession', list).update({ registered_at: `${month}-15T10:00:00Z` });

    before(async () => {
      accessions = [(await register(p, u.doc)).accession, (await register(p, u.doc)).accession];
      await moveToMonth(accessions);
    });

    it("copies every sample of the month with its patient identification; each download is a PHI access event", async () => {
      const status = await exportOf(u.tech, { kind: 'samples', month, format: 'csv' });
      assert.equal(status.total, 2);
      const file = await download(p, u.tech, status.download);
      assert.equal(file.status, 200);
      const rows: BundleRow[] = parse(file.bytes.toString('utf8'), { columns: true });
      assert.deepEqual([...new Set(rows.map((r) => r.record))].sort(), [...accessions].sort());
      for (const accession of accessions)
        assert.ok(rows.some((r) => r.record === accession && r.item === 'Patient MRN' && r.what === PATIENT.mrn));
      const reads = await db()('phi_access_events').where({ username: u.tech.username, record_kind: 'sample_export' });
      assert.equal(reads.length, 1);
      assert.equal(reads[0].outcome, 'read');
      assert.deepEqual([...reads[0].record_ids].sort(), [...accessions].sort());
    });

    it('refuses a clinician a month of samples with 403 (nothing generated), whoever submitted them', async () => {
      const res = await start(u.doc, { kind: 'samples', month, format: 'pdf' });
      assert.equal(res.status, 403);
      assert.equal(await db()('bulk_exports').where({ requested_by: u.doc.username }).first(), undefined);
    });

    it('refuses a selection past BULK_EXPORT_MAX_RECORDS with 422 naming the limit; nothing is started', async () => {
      const third = (await register(p, u.doc)).accession;
      await moveToMonth([third]);
      const res = await start(u.tech, { kind: 'samples', month, format: 'json' });
      assert.equal(res.status, 422, JSON.stringify(res.body));
      assert.equal(res.body.type.endsWith('bulk-export-too-large'), true, res.body.type);
      assert.equal(res.body.limit, LIMIT);
      assert.equal(res.body.records, 3);
      assert.match(res.body.detail, /at most 2 \(BULK_EXPORT_MAX_RECORDS\)/);
      const refusals = await db()('audit_events').where({ entity_type: 'bulk_export', actor: u.tech.username, action: 'bulk_export.refused' });
      assert.deepEqual(
        refusals.map((e) => [e.details.reason, e.details.limit, e.details.records]),
        [['too_large', LIMIT, 3]],
      );
      assert.equal(await db()('bulk_exports').where({ id: refusals[0].entity_id }).first(), undefined);
    });
  });

  it('answers bad requests 400 and unknown exports 404, starting nothing', async () => {
    const before = await db()('bulk_exports').where({ requested_by: u.qa.username }).count<{ n: string }[]>({ n: '*' });
    for (const body of [
      { kind: 'capas', year: 'last' },
      { kind: 'capas', month: '2026-01' },
      { kind: 'documents', year: 2026 },
      { kind: 'samples', month: '2026-13' },
      { kind: 'capas', year: 2026, format: 'docx' },
    ]) {
      const res = await start(u.qa, body);
      assert.equal(res.status, 400, JSON.stringify(body));
      assert.match(res.headers.get('content-type') ?? '', /problem\+json/);
    }
    const after = await db()('bulk_exports').where({ requested_by: u.qa.username }).count<{ n: string }[]>({ n: '*' });
    assert.deepEqual(after, before);
    const unknown = '00000000-0000-4000-8000-000000000000';
    assert.equal((await p.api('GET', `/api/v1/bulk-exports/${unknown}`, { key: u.qa.apiKey })).status, 404);
    assert.equal((await p.api('GET', `/api/v1/bulk-exports/${unknown}/file`, { key: u.qa.apiKey })).status, 404);
    assert.equal((await p.api('GET', '/api/v1/bulk-exports/not-a-uuid', { key: u.qa.apiKey })).status, 400);
  });
});
