import { stringify } from 'csv-stringify/sync';
import { printedUtc, signatureWhat, trailWhat, type ExportedRecord } from './exported-record';

export const CSV_COLUMNS = ['section', 'item', 'at_utc', 'by', 'what', 'detail'] as const;

/**
 * One table a spreadsheet opens: a row per field, the content, each signature (printed name, UTC time, meaning),
 * each custody event and each audit event, told apart by the section column.
 */
export function renderCsv(record: ExportedRecord): string {
  return stringify(csvRowsOf(record), { header: true, columns: [...CSV_COLUMNS] });
}

/** The rows of one record's table, without the header. */
export function csvRowsOf(record: ExportedRecord): string[][] {
  const rows: string[][] = [
    ['export', record.title, record.generatedAt, `${record.generatedBy.printedName} (${record.generatedBy.username})`, 'generated', ''],
    ['record', 'State', '', '', record.state, ''],
    ...record.fields.map((f) => ['record', f.label, '', '', f.value, '']),
  ];
  if (record.content !== null) rows.push(['content', 'text', '', '', record.content, '']);
  for (const s of record.signatures) {
    const detail = [
      s.stage ? `stage: ${s.stage}` : '',
      `content SHA-256: ${s.contentHash}`,
      s.void ? `void since ${s.voidedAt}: ${s.voidReason}` : '',
    ]
      .filter(Boolean)
      .join('; ');
    rows.push(['signature', `${s.printedName} (${s.username})`, printedUtc(s.signedAt), s.printedName, signatureWhat(record, s), detail]);
  }
  for (const c of record.custody ?? []) {
    const detail = [c.from ? `from ${c.from}` : '', c.to ? `to ${c.to}` : '', c.condition ? `condition: ${c.condition}` : '']
      .filter(Boolean)
      .join('; ');
    rows.push(['custody', c.piece, c.at, c.actor, c.event, detail]);
  }
  for (const e of record.trail) rows.push(['audit', String(e.seq), e.at, e.actor, trailWhat(record, e), JSON.stringify(e.details)]);
  return rows;
}

/** A bulk export's table: each record's rows as the single export writes them, after a column naming the record. */
export const BUNDLE_CSV_COLUMNS = ['record', ...CSV_COLUMNS] as const;

export function csvBundleRows(key: string, record: ExportedRecord, header: boolean): string {
  return stringify(
    csvRowsOf(record).map((row) => [key, ...row]),
    { header, columns: [...BUNDLE_CSV_COLUMNS] },
  );
}
