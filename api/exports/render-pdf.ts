import { join } from 'node:path';
import PDFDocument from 'pdfkit';
import { printedUtc, type ExportedRecord } from './exported-record';

// PDF/A needs every font embedded: DejaVu Sans ships in the repository (assets/fonts, its licence beside it).
const FONTS = join(__dirname, '..', '..', 'assets', 'fonts');
const REGULAR = join(FONTS, 'DejaVuSans.ttf');
const BOLD = join(FONTS, 'DejaVuSans-Bold.ttf');

/** The record as a PDF/A-2b file: the printed copy an inspector keeps. */
export function renderPdf(record: ExportedRecord): Promise<Buffer> {
  const doc = new PDFDocument({
    size: 'A4',
    margin: 50,
    pdfVersion: '1.7',
    subset: 'PDF/A-2b',
    lang: 'en',
    displayTitle: true,
    info: { Title: record.title, Author: 'labflow', Subject: `${record.kind} export`, Creator: 'labflow' },
  });
  const chunks: Buffer[] = [];
  doc.on('data', (chunk: Buffer) => chunks.push(chunk));
  const done = new Promise<Buffer>((resolve, reject) => {
    doc.on('end', () => resolve(Buffer.concat(chunks)));
    doc.on('error', reject);
  });
  doc.registerFont('regular', REGULAR);
  doc.registerFont('bold', BOLD);

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
    doc.text(`#${e.seq}  ${printedUtc(e.at)}  ${e.actor}  ${e.action}  ${JSON.stringify(e.details)}`);
  }
  doc.moveDown().font('bold').text(`End of the audit trail: ${record.trail.length} events.`);
  doc.end();
  return done;
}
