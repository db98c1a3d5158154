import assert from 'node:assert/strict';
import { startPlatform, type Platform } from '../helpers/platform';
import { makeUsers, type TestUser } from '../helpers/users';
import { approve } from '../helpers/documents';
import { waitFor } from '../helpers/wait';
import { oneStage, underReview } from '../api/support';
import { testEnv } from '../setup/env';
import { appendManyEvents, assertCompleteTrail, csvRows, csvTrail, download, pdfText, pdfTrail, printedUtc, trailOf } from './support';

describe('a document version exported as an accurate and complete copy', () => {
  let p: Platform;
  let u: Record<'author' | 'rita' | 'control' | 'outsider', TestUser>;
  let v: Awaited<ReturnType<typeof underReview>>;
  let signature: { printed_name: string; username: string; signed_at: Date; meaning: string };
  const content = 'Pipette calibration: gravimetric check at 20 °C, ten weighings per volume.';

  before(async () => {
    p = await startPlatform();
    u = await makeUsers({ author: ['author'], rita: ['reviewer'], control: ['document_control'], outsider: ['reviewer'] });
    v = await underReview(p, u.author, oneStage([u.rita]), content);
    const approved = await approve(p, u.rita, v.number, v.version, v.contentHash);
    assert.equal(approved.status, 200, JSON.stringify(approved.body));
    signature = await waitFor(() => testEnv().db('signatures').where({ workflow_id: v.workflowId }).first(), 'the signature');
    // A trail longer than the 1,000 rows a read once stopped at.
    await appendManyEvents('document', v.number, 1_100);
  });
  after(() => p.stop());

  const exportPath = (format: string) => `${v.path}/export?format=${format}`;

  it('prints content, state, each signature (printed name, UTC time, meaning) and the whole trail into a PDF/A file', async () => {
    const trail = await trailOf('document', v.number);
    assert.ok(trail.length > 1_100);
    const res = await download(p, u.control, exportPath('pdf'));
    assert.equal(res.status, 200);
    assert.equal(res.type, 'application/pdf');
    assert.match(res.bytes.toString('latin1'), /pdfaid:part[^0-9]*2/, 'PDF/A-2 identification in the XMP metadata');
    const text = await pdfText(res.bytes);
    assert.ok(text.includes(content), 'the content');
    assert.match(text, /State: (in_review|approved|effective)/);
    assert.ok(text.includes(`Signed by ${signature.printed_name} (${signature.username})`));
    assert.ok(text.includes(`Date and time: ${printedUtc(signature.signed_at)}`));
    assert.ok(text.includes(`Meaning: ${signature.meaning}`));
    const printed = pdfTrail(text);
    assert.ok(printed.length > 1_100, 'more than the 1,000 rows a read once stopped at');
    assert.equal(printed[0].seq, Number(trail[0].seq));
    await assertCompleteTrail(printed, 'document', v.number, trail);
  });

  it('writes a CSV that parses back into the same fields, signatures and trail', async () => {
    const trail = await trailOf('document', v.number);
    const res = await download(p, u.control, exportPath('csv'));
    assert.equal(res.status, 200);
    assert.match(res.type, /^text\/csv/);
    const rows = csvRows(res.bytes);
    assert.equal(rows.find((r) => r.section === 'content')?.what, content);
    const signed = rows.filter((r) => r.section === 'signature');
    assert.equal(signed.length, 1);
    assert.equal(signed[0].by, signature.printed_name);
    assert.equal(signed[0].at_utc, printedUtc(signature.signed_at));
    assert.equal(signed[0].what, signature.meaning);
    await assertCompleteTrail(csvTrail(rows), 'document', v.number, trail);
  });

  it('answers JSON with the complete trail and audits each export with its format and exporter', async () => {
    const trail = await trailOf('document', v.number);
    const res = await p.api('GET', exportPath('json'), { key: u.control.apiKey });
    assert.equal(res.status, 200);
    assert.ok(res.body.trail.length >= trail.length);
    assert.deepEqual(
      res.body.trail.slice(0, trail.length).map((e: { seq: number }) => e.seq),
      trail.map((e) => Number(e.seq)),
    );
    assert.equal(res.body.signatures[0].printedName, signature.printed_name);
    const exported = await testEnv()
      .db('audit_events')
      .where({ entity_type: 'document', entity_id: v.number, action: 'record.exported', actor: u.control.username })
      .pluck('details');
    assert.deepEqual(exported.map((d: { format: string }) => d.format).sort(), ['csv', 'json', 'pdf']);
  });

  it('refuses a reader without the right: 403, nothing generated, the attempt audited', async () => {
    const res = await download(p, u.outsider, exportPath('pdf'));
    assert.equal(res.status, 403);
    assert.match(res.type, /^application\/problem\+json/);
    assert.notEqual(res.bytes.subarray(0, 5).toString('latin1'), '%PDF-');
    const db = testEnv().db;
    const mine = db('audit_events').where({ entity_type: 'document', entity_id: v.number, actor: u.outsider.username });
    assert.deepEqual(await mine.clone().pluck('action'), ['record.export_refused']);
    assert.equal((await mine.clone().first('details')).details.format, 'pdf');
  });

  it('pages through the trail with a keyset cursor until it ends', async () => {
    const trail = await trailOf('document', v.number);
    const seen: number[] = [];
    let after: number | null = 0;
    while (after !== null) {
      const res = await p.api('GET', `/api/v1/documents/${v.number}/audit-trail?after=${after}&limit=1000`, { key: u.control.apiKey });
      assert.equal(res.status, 200, JSON.stringify(res.body));
      seen.push(...res.body.items.map((e: { seq: number }) => e.seq));
      after = res.body.next;
    }
    assert.deepEqual(
      seen.slice(0, trail.length),
      trail.map((e) => Number(e.seq)),
    );
    const bad = await p.api('GET', `/api/v1/documents/${v.number}/audit-trail?limit=0`, { key: u.control.apiKey });
    assert.equal(bad.status, 400);
  });
});
