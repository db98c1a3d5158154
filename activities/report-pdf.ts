import { join } from 'node:path';
import PDFDocument from 'pdfkit';
import type { ReportContent, ReportTest } from '../db/reports';

// PDF/A needs every font embedded: the DejaVu Sans the record exports use (assets/fonts, its licence beside it).
const FONTS = join(__dirname, '..', 'assets', 'fonts');

export interface PrintedReport {
  content: ReportContent;
  version: number;
  lab: { name: string; address: string };
  /** The report date: the moment of release (UTC). */
  reportDate: string;
  contentHash: string;
  signature: { printedName: string; username: string; meaning: string; signedAt: string };
}

const printedUtc = (at: string) => `${at.slice(0, 10)} ${at.slice(11, 19)} UTC`;

const FLAG_TEXT: Record<string, string> = {
  normal: 'N',
  low: 'L (low)',
  high: 'H (high)',
  critical_low: 'LL (critical low)',
  critical_high: 'HH (critical high)',
  invalid: 'invalid',
};

function resultText(t: ReportTest): string {
  if (!t.result) return `not reported: ${t.state}${t.reason ? ` (${t.reason})` : ''}`;
  const r = t.result;
  if (r.kind === 'numeric') return `${r.value} ${r.unit ?? ''}`.trim();
  if (r.kind === 'coded') return `${r.code}`;
  return r.text ?? '';
}

function rangeText(t: ReportTest): string {
  const r = t.referenceRange;
  if (!r) return t.result?.kind === 'numeric' ? 'no reference interval applies' : '—';
  const low = r.low === null ? '' : String(r.low);
  const high = r.high === null ? '' : String(r.high);
  return `${low}–${high} ${r.unit}`;
}

/**
 * A released report as a PDF/A-2b file, the copy the submitter receives: everything 42 CFR 493.1291(c) asks a test
 * report to carry, and the release signature manifested (printed name, UTC time, meaning).
 */
export function renderReportPdf(report: PrintedReport): Promise<Buffer> {
  const { content, lab, signature } = report;
  const corrected = content.correction !== null;
  const title = `${corrected ? 'CORRECTED ' : ''}Laboratory report ${content.sample.accession} v${report.version}`;
  const doc = new PDFDocument({
    size: 'A4',
    margin: 50,
    pdfVersion: '1.7',
    subset: 'PDF/A-2b',
    lang: 'en',
    displayTitle: true,
    info: {
      Title: title,
      Author: lab.name,
      Subject: 'laboratory test report',
      Creator: 'labflow',
      CreationDate: new Date(report.reportDate),
    },
  });
  const chunks: Buffer[] = [];
  doc.on('data', (chunk: Buffer) => chunks.push(chunk));
  const done = new Promise<Buffer>((resolve, reject) => {
    doc.on('end', () => resolve(Buffer.concat(chunks)));
    doc.on('error', reject);
  });
  doc.registerFont('regular', join(FONTS, 'DejaVuSans.ttf'));
  doc.registerFont('bold', join(FONTS, 'DejaVuSans-Bold.ttf'));
  const heading = (text: string) => doc.moveDown(0.8).font('bold').fontSize(12).text(text).moveDown(0.3).font('regular').fontSize(9);
  const line = (label: string, value: string | null) =>
    doc
      .font('bold')
      .text(`${label}: `, { continued: true })
      .font('regular')
      .text(value || '—');

  doc.font('bold').fontSize(15).text(lab.name);
  doc
    .font('regular')
    .fontSize(9)
    .text(lab.address || '—');
  doc.moveDown(0.6).font('bold').fontSize(14).text(title);
  if (corrected) {
    doc.font('bold').fontSize(10).text(`CORRECTED REPORT: replaces version ${content.correction!.version}`);
    doc.font('regular').fontSize(9).text(`Reason for correction: ${content.correction!.reason}`);
  }
  doc.font('regular').fontSize(9).moveDown(0.3);
  line('Report date', printedUtc(report.reportDate));

  heading('Patient');
  line('Name', content.patient.name);
  line('Identifier (MRN)', content.patient.mrn);
  line('Date of birth', content.patient.dob);
  line('Sex', content.patient.sex);

  heading('Specimen');
  line('Accession', content.sample.accession);
  line('Specimen source', content.sample.specimenSource);
  line('Collected', content.sample.collectedAt && printedUtc(content.sample.collectedAt));
  line('Received', content.sample.receivedAt && printedUtc(content.sample.receivedAt));
  line('Submitted by', content.sample.submitter);
  // The provider the version is delivered to; content assembled before reports named them has no such field.
  if (content.sample.orderingProvider !== undefined) line('Ordering provider', content.sample.orderingProvider ?? 'none named');

  heading(`Results (${content.tests.length})`);
  if (!content.tests.length && content.rejections.length) doc.text('No test was performed: the specimen was rejected (below).');
  for (const t of content.tests) {
    doc.font('bold').text(`${t.test} — ${t.name}`);
    doc.font('regular');
    line('Result', resultText(t));
    line('Reference interval', rangeText(t));
    line('Flag', t.flag ? (FLAG_TEXT[t.flag] ?? t.flag) : t.result ? 'none' : '—');
    if (t.result) {
      line('Performed by', [t.performedBy, t.instrument && `on ${t.instrument}`].filter(Boolean).join(' '));
      line('Verified by', t.verifiedBy.join(', ') || null);
    }
    doc.moveDown(0.4);
  }

  heading('Specimens not meeting acceptance criteria');
  if (!content.rejections.length) doc.text('None.');
  for (const r of content.rejections) {
    line('Tests', r.tests.join(', '));
    line('Condition', [r.code, r.condition].filter(Boolean).join(': '));
    line('Disposition', r.disposition);
    doc.moveDown(0.3);
  }

  heading('Release');
  doc.font('bold').text(`Released by ${signature.printedName} (${signature.username})`);
  doc.font('regular').text(`Date and time: ${printedUtc(signature.signedAt)}`);
  doc.text(`Meaning: ${signature.meaning}`);
  doc.text(`Content SHA-256 signed: ${report.contentHash}`);
  doc.end();
  return done;
}
