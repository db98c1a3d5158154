import type { Knex } from 'knex';
import type { BulkExportFormat, BulkExportKind, BulkExportState } from '../common/bulk-export';
import type { Db } from './knex';

type Conn = Db | Knex.Transaction;

export interface BulkExportRow {
  id: string;
  workflow_id: string;
  kind: BulkExportKind;
  period: string;
  format: BulkExportFormat;
  state: BulkExportState;
  requested_by_id: string;
  requested_by: string;
  requested_by_name: string;
  requested_at: Date;
  total: number;
  done: number;
  record_ids: string[] | null;
  file_name: string | null;
  media_type: string | null;
  bytes: number | null;
  sha256: string | null;
  error: string | null;
  finished_at: Date | null;
  expired_at: Date | null;
}

/** Every column but the file itself, which only the download reads. */
const COLUMNS = [
  'id',
  'workflow_id',
  'kind',
  'period',
  'format',
  'state',
  'requested_by_id',
  'requested_by',
  'requested_by_name',
  'requested_at',
  'total',
  'done',
  'record_ids',
  'file_name',
  'media_type',
  'bytes',
  'sha256',
  'error',
  'finished_at',
  'expired_at',
];

/** The UTC bounds of a period: a year (`2026`) or a month (`2026-12`). */
export function periodBounds(period: string): { from: string; to: string } {
  const [year, month] = period.split('-').map(Number);
  const from = month ? new Date(Date.UTC(year, month - 1, 1)) : new Date(Date.UTC(year, 0, 1));
  const to = month ? new Date(Date.UTC(year, month, 1)) : new Date(Date.UTC(year + 1, 0, 1));
  return { from: from.toISOString(), to: to.toISOString() };
}

/** The records a selection names, oldest first: CAPAs initiated in a year, samples (not aliquots) registered in a month. */
function selection(db: Conn, kind: BulkExportKind, period: string) {
  const { from, to } = periodBounds(period);
  return kind === 'capas'
    ? db('capas').where('initiated_at', '>=', from).andWhere('initiated_at', '<', to).orderBy(['initiated_at', 'number'])
    : db('samples').whereNull('parent_id').andWhere('registered_at', '>=', from).andWhere('registered_at', '<', to).orderBy(['registered_at', 'accession']);
}

export async function countSelection(db: Conn, kind: BulkExportKind, period: string): Promise<number> {
  const [{ n }] = await selection(db, kind, period).clearOrder().count<{ n: string }[]>({ n: '*' });
  return Number(n);
}

/** At most `limit` record keys of the selection (CAPA numbers or accessions). */
export async function selectionKeys(db: Conn, kind: BulkExportKind, period: string, limit: number): Promise<string[]> {
  return selection(db, kind, period)
    .limit(limit)
    .pluck(kind === 'capas' ? 'number' : 'accession');
}

export async function insertBulkExport(
  trx: Conn,
  row: Pick<BulkExportRow, 'id' | 'workflow_id' | 'kind' | 'period' | 'format' | 'requested_by_id' | 'requested_by' | 'requested_by_name' | 'total'>,
): Promise<void> {
  await trx('bulk_exports').insert(row);
}

export async function findBulkExport(db: Conn, id: string): Promise<BulkExportRow | undefined> {
  return db('bulk_exports').where({ id }).first(COLUMNS);
}

/** The row locked for a change of its state. */
export async function lockBulkExport(trx: Knex.Transaction, id: string): Promise<BulkExportRow | undefined> {
  return trx('bulk_exports').where({ id }).forNoKeyUpdate().first(COLUMNS);
}

export async function bulkExportFile(db: Conn, id: string): Promise<Buffer | undefined> {
  const row = await db('bulk_exports').where({ id }).first('file');
  return row?.file ?? undefined;
}

export async function updateBulkExport(trx: Conn, id: string, change: Record<string, unknown>): Promise<void> {
  await trx('bulk_exports').where({ id }).update(change);
}
