import { join } from 'node:path';
import PDFDocument from 'pdfkit';
import { otherRecord, printedUtc, trailWhat, type ExportedRecord } from './exported-record';

// PDF/A needs every font embedded: DejaVu Sans ships in the repository (assets/fonts, its licence beside it).
const FONTS = join(__dirname, '..', '..', 'assets', 'fonts');
const REGULAR = join(FONTS, 'DejaVuSans.ttf');
const BOLD = join(FONTS, 'DejaVuSans-Bold.ttf');

/** A PDF/A-2b document with the embedded fonts, and the promise of its bytes once it is ended. */
function newPdf(title: string, subject: string) {
  const doc = new PDFDocument({
    size: 'A4',
    margin: 50,
    pdfVersion: '1.7',
    subset: 'PDF/A-2b',
    lang: 'en',
    displayTitle: true,
    info: { Title: title, Author: 'labflow', Subject: subject, Creator: 'labflow' },
  });
  const chunks: Buffer[] = [];
  doc.on('data', (chunk: Buffer) => chunks.push(chunk));
  const done = new Promise<Buffer>((resolve, reject) => {
    doc.on('end', () => resolve(Buffer.concat(chunks)));
    doc.on('error', reject);
  });
  doc.registerFont('regular', REGULAR);
  doc.registerFont('bold', BOLD);
  return { doc, done };
}

/** The record as a PDF/A-2b file: the printed copy an inspector keeps. */
export function renderPdf(record: ExportedRecord): Promise<Buffer> {
  const { doc, done } = newPdf(record.title, `${record.kind} export`);
  writeRecord(doc, record);
  doc.end();
  return done;
}

/** What a bundle's cover page says: the selection, how many records, who asked and when. */
export interface BundleCover {
  title: string;
  selection: string;
  generatedAt: string;
  generatedBy: { username: string; printedName: string };
}

/**
 * Several records as one PDF/A-2b file: a cover page listing them, then each record's copy from a new page, as the
 * single export prints it.
 */
export async function renderPdfBundle(cover: BundleCover, records: AsyncIterable<ExportedRecord>, keys: string[]): Promise<Buffer> {
  const { doc, done } = newPdf(cover.title, 'bulk export');
  doc.font('bold').fontSize(16).text(cover.title);
  doc.font('regular').fontSize(9).moveDown(0.3);
  doc.text(`Selection: ${cover.selection}`);
  doc.text(`Generated ${printedUtc(cover.generatedAt)} for ${cover.generatedBy.printedName} (${cover.generatedBy.username})`);
  doc.text(`Records: ${keys.length}`);
  doc.moveDown(0.5);
  for (const key of keys) doc.text(key);
  let written = 0;
  for await (const record of records) {
    doc.addPage();
    writeRecord(doc, record);
    written += 1;
  }
  doc.addPage().font('bold').fontSize(11).text(`End of the bulk export: ${written} records.`);
  doc.end();
  return done;
}

function writeRecord(doc: PDFKit.PDFDocument, record: ExportedRecord): void {
  const heading = (text: string) => doc.moveDown(0.8).font('bold').fontSize(13).text(text).moveDown(0.3).font('regular').fontSize(9);
  const line = (label: string, value: string) =>
    doc
      .font('bold')
      .text(`${label}: `, { continued: true })
      .font('regular')
      .text(value || '—');

  doc.font('bold').fontSize(16).text(record.title);
  doc.font('regular').fontSize(9).moveDown(0.3);
  doc.text(`Generated ${printedUtc(record.generatedAt)} by ${record.generatedBy.printedName} (${record.generatedBy.username})`);
  doc.text(`State: ${record.state}`);

  heading('Record');
  for (const f of record.fields) line(f.label, f.value);

  if (record.content !== null) {
    heading('Content');
    doc.text(record.content || '(empty)');
  }

  heading(`Electronic signatures (${record.signatures.length})`);
  if (!record.signatures.length) doc.text('None.');
  for (const s of record.signatures) {
    doc.font('bold').text(`Signed by ${s.printedName} (${s.username})`);
    doc.font('regular').text(`Date and time: ${printedUtc(s.signedAt)}`);
    doc.text(`Meaning: ${s.meaning}`);
    const signedRecord = otherRecord(record, s);
    if (signedRecord) doc.text(`Record signed: ${signedRecord}`);
    if (s.stage) doc.text(`Stage: ${s.stage}`);
    doc.text(`Content SHA-256 signed: ${s.contentHash}`);
    if (s.void) doc.text(`VOID since ${printedUtc(s.voidedAt!)}: ${s.voidReason ?? ''}`);
    doc.moveDown(0.4);
  }

  if (record.custody) {
    heading(`Chain of custody (${record.custody.length} events)`);
    for (const c of record.custody) {
      const where = [c.from ? `from ${c.from}` : '', c.to ? `to ${c.to}` : '', c.condition ? `condition ${c.condition}` : '']
        .filter(Boolean)
        .join(', ');
      doc.text(`${printedUtc(c.at)}  ${c.piece}  ${c.event} by ${c.actor}${where ? ` (${where})` : ''}`);
    }
  }

  heading(`Audit trail (${record.trail.length} events, complete)`);
  for (const e of record.trail) {
    doc.text(`#${e.seq}  ${printedUtc(e.at)}  ${e.actor}  ${trailWhat(record, e)}  ${JSON.stringify(e.details)}`);
  }
  doc.moveDown().font('bold').text(`End of the audit trail: ${record.trail.length} events.`);
}
