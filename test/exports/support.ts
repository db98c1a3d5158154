import assert from 'node:assert/strict';
import { parse } from 'csv-parse/sync';
import { PDFParse } from 'pdf-parse';
import type { Platform } from '../helpers/platform';
import type { TestUser } from '../helpers/users';
import { testEnv } from '../setup/env';

/** An export as a client downloads it: the raw bytes, the status and the headers. */
export async function download(p: Platform, user: TestUser, path: string) {
  const res = await fetch(`${p.baseUrl}${path}`, { headers: { authorization: `Bearer ${user.apiKey}` } });
  return { status: res.status, type: res.headers.get('content-type') ?? '', bytes: Buffer.from(await res.arrayBuffer()) };
}

/** The text of a PDF, read back with a PDF parser, and the parts of its trailer and metadata a PDF/A file needs. */
export async function pdfText(bytes: Buffer): Promise<string> {
  assert.equal(bytes.subarray(0, 5).toString('latin1'), '%PDF-');
  const parser = new PDFParse({ data: new Uint8Array(bytes) });
  try {
    return (await parser.getText()).text;
  } finally {
    await parser.destroy();
  }
}

export type CsvRow = { section: string; item: string; at_utc: string; by: string; what: string; detail: string };

export const csvRows = (bytes: Buffer): CsvRow[] => parse(bytes.toString('utf8'), { columns: true, skip_empty_lines: false });

/** The record's trail as the database holds it, oldest first. */
export const trailOf = (entityType: string, entityId: string) =>
  testEnv().db('audit_events').where({ entity_type: entityType, entity_id: entityId }).orderBy('seq').select('seq', 'action', 'actor');

/** Appends `count` events to one record's trail in one statement (the insert trigger chains each). */
export async function appendManyEvents(entityType: string, entityId: string, count: number) {
  const rows = Array.from({ length: count }, (_, n) => ({
    actor: 'system:test',
    action: 'test.bulk_event',
    entity_type: entityType,
    entity_id: entityId,
    details: JSON.stringify({ n }),
    seq: 0,
    prev_hash: '',
    hash: '',
  }));
  for (let i = 0; i < rows.length; i += 500)
    await testEnv()
      .db('audit_events')
      .insert(rows.slice(i, i + 500));
}

export const printedUtc = (at: Date | string) => {
  const iso = new Date(at).toISOString();
  return `${iso.slice(0, 10)} ${iso.slice(11, 19)} UTC`;
};

/** Lines of the printed audit trail ("#<seq>  <time>  <actor>  <action> ..."). */
export const trailLines = (text: string) => text.split('\n').filter((l) => /^#\d+ /.test(l));

/**
 * The printed trail is the database's trail, in order and without a gap, up to the moment the copy was made (a
 * run may still be recording a last step), and at least as long as the trail read before asking. Each printed
 * event is its sequence number and the text it was printed with.
 */
export async function assertCompleteTrail(
  printed: { seq: number; text: string }[],
  entityType: string,
  entityId: string,
  before: { seq: number | string }[],
) {
  const last = printed[printed.length - 1];
  assert.ok(last.seq >= Number(before[before.length - 1].seq));
  const upToCopy = (await trailOf(entityType, entityId)).filter((e) => Number(e.seq) <= last.seq);
  assert.deepEqual(
    printed.map((e) => e.seq),
    upToCopy.map((e) => Number(e.seq)),
  );
  assert.ok(last.text.includes(upToCopy[upToCopy.length - 1].action), 'the last event printed with its action');
  return upToCopy;
}

/** The PDF's printed trail lines as events. */
export const pdfTrail = (text: string) => trailLines(text).map((line) => ({ seq: Number(/^#(\d+) /.exec(line)![1]), text: line }));

/** The CSV's audit rows as events. */
export const csvTrail = (rows: CsvRow[]) => rows.filter((r) => r.section === 'audit').map((r) => ({ seq: Number(r.item), text: r.what }));
