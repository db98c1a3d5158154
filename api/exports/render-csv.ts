import { stringify } from 'csv-stringify/sync';
import { printedUtc, type ExportedRecord } from './exported-record';

export const CSV_COLUMNS = ['section', 'item', 'at_utc', 'by', 'what', 'detail'] as const;

/**
 * One table a spreadsheet opens: a row per field, the content, each signature (printed name, UTC time, meaning),
 * each custody event and each audit event, told apart by the section column.
 */
export function renderCsv(record: ExportedRecord): string {
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
    rows.push(['signature', `${s.printedName} (${s.username})`, printedUtc(s.signedAt), s.printedName, s.meaning, detail]);
  }
  for (const c of record.custody ?? []) {
    const detail = [c.from ? `from ${c.from}` : '', c.to ? `to ${c.to}` : '', c.condition ? `condition: ${c.condition}` : '']
      .filter(Boolean)
      .join('; ');
    rows.push(['custody', c.piece, c.at, c.actor, c.event, detail]);
  }
  for (const e of record.trail) rows.push(['audit', String(e.seq), e.at, e.actor, e.action, JSON.stringify(e.details)]);
  return stringify(rows, { header: true, columns: [...CSV_COLUMNS] });
}
