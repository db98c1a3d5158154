import assert from 'node:assert/strict';
import { randomInt } from 'node:crypto';
import { waitFor } from '../helpers/wait';
import { testEnv } from '../setup/env';
import { labPlatform, routedSample, testCode } from '../results/support';
import { assembledAndReleased, verifiedResult } from '../reports/support';
import { csvRows, download, pdfText, printedUtc } from './support';

interface Signed {
  printedName: string;
  username: string;
  meaning: string;
  signedAt: string;
  contentHash: string;
  entityType?: string;
  entityId?: string;
}

describe("a sample's record export holds the signatures of its analyses and reports", function () {
  this.timeout(180_000);
  const lab = labPlatform();

  /** The sample's analysis verified and its report released: the signatures as PostgreSQL holds them. */
  async function reportedSample() {
    const { p, u } = lab;
    const test = await testCode();
    const accession = await routedSample(p, u.doc, u.tech, [test]);
    await verifiedResult(p, u, accession, test, 4.2);
    await assembledAndReleased(p, u.director, accession);
    const analysis = `analysis:${accession}:${test}`;
    const report = `report:${accession}:v1`;
    const { db } = testEnv();
    const verification = await db('signatures').where({ entity_type: 'analysis', entity_id: analysis, meaning: 'verification' }).first();
    const release = await db('signatures').where({ entity_type: 'report', entity_id: report }).first();
    assert.ok(verification && release);
    return { accession, analysis, report, verification, release };
  }

  const asExported = (s: { printed_name: string; username: string; meaning: string; signed_at: Date; content_hash: string; entity_type: string; entity_id: string }) => ({
    printedName: s.printed_name,
    username: s.username,
    meaning: s.meaning,
    signedAt: new Date(s.signed_at).toISOString(),
    contentHash: s.content_hash,
    entityType: s.entity_type,
    entityId: s.entity_id,
  });
  const shown = (s: Signed) => ({
    printedName: s.printedName,
    username: s.username,
    meaning: s.meaning,
    signedAt: s.signedAt,
    contentHash: s.contentHash,
    entityType: s.entityType,
    entityId: s.entityId,
  });

  it('the single export (JSON, CSV, PDF) carries the verification and release signatures, each naming the record signed', async () => {
    const { p, u } = lab;
    const { accession, analysis, report, verification, release } = await reportedSample();

    const json = await download(p, u.tech, `/api/v1/samples/${accession}/export?format=json`);
    assert.equal(json.status, 200);
    const signatures: Signed[] = JSON.parse(json.bytes.toString('utf8')).signatures;
    assert.deepEqual(signatures.map(shown), [asExported(verification), asExported(release)]);

    const csv = csvRows((await download(p, u.tech, `/api/v1/samples/${accession}/export?format=csv`)).bytes).filter((r) => r.section === 'signature');
    assert.deepEqual(
      csv.map((r) => [r.by, r.at_utc, r.what]),
      [
        [verification.printed_name, printedUtc(verification.signed_at), `verification on analysis ${analysis}`],
        [release.printed_name, printedUtc(release.signed_at), `responsibility on report ${report}`],
      ],
    );
    assert.ok(csv[1].detail.includes(`content SHA-256: ${release.content_hash}`));

    const text = await pdfText((await download(p, u.tech, `/api/v1/samples/${accession}/export?format=pdf`)).bytes);
    assert.match(text, /Electronic signatures \(2\)/);
    for (const [s, record] of [
      [verification, `analysis ${analysis}`],
      [release, `report ${report}`],
    ] as const) {
      assert.ok(text.includes(`Signed by ${s.printed_name} (${s.username})`));
      assert.ok(text.includes(`Date and time: ${printedUtc(s.signed_at)}`));
      assert.ok(text.includes(`Record signed: ${record}`));
      assert.ok(text.includes(`Content SHA-256 signed: ${s.content_hash}`));
    }
    const exported = await testEnv()
      .db('audit_events')
      .where({ entity_type: 'sample', entity_id: accession, action: 'record.exported', actor: u.tech.username })
      .pluck('details');
    assert.deepEqual(
      exported.map((d: { signatures: number }) => d.signatures),
      [2, 2, 2],
    );
  });

  it('a bulk export of the month copies the same signatures into each sample', async () => {
    const { p, u } = lab;
    const { accession, verification, release } = await reportedSample();
    // A month of its own (the shared database holds every other file's samples, all registered now).
    const month = `${randomInt(2100, 2900)}-07`;
    await testEnv().db('samples').where({ accession }).update({ registered_at: `${month}-15T10:00:00Z` });
    const started = await p.api('POST', '/api/v1/bulk-exports', { key: u.tech.apiKey, body: { kind: 'samples', month, format: 'json' } });
    assert.equal(started.status, 202, JSON.stringify(started.body));
    assert.equal(started.body.total, 1);
    await waitFor(
      async () => (await p.api('GET', `/api/v1/bulk-exports/${started.body.id}`, { key: u.tech.apiKey })).body.state === 'completed',
      'the bulk export written',
      60_000,
    );
    const file = await download(p, u.tech, `/api/v1/bulk-exports/${started.body.id}/file`);
    assert.equal(file.status, 200);
    const [record] = JSON.parse(file.bytes.toString('utf8')).records;
    assert.equal(record.entityId, accession);
    assert.deepEqual((record.signatures as Signed[]).map(shown), [asExported(verification), asExported(release)]);
  });
});
