/**
 * Bulk exports: every record of one kind in one period, copied into one file by a `bulk-export:<id>` run. The
 * selection and the file live in PostgreSQL (bulk_exports); the run carries only the export's ID and its bounds.
 */
export const BULK_EXPORT_KINDS = ['capas', 'samples'] as const;
export type BulkExportKind = (typeof BULK_EXPORT_KINDS)[number];

export const BULK_EXPORT_FORMATS = ['pdf', 'csv', 'json'] as const;
export type BulkExportFormat = (typeof BULK_EXPORT_FORMATS)[number];

export type BulkExportState = 'running' | 'completed' | 'failed' | 'expired';

export interface BulkExportInput {
  exportId: string;
  /** The configured most records one export may hold (BULK_EXPORT_MAX_RECORDS) when it was asked for. */
  maxRecords: number;
}

export interface BulkExportResult {
  state: BulkExportState;
  total: number;
  bytes: number;
}

/** Failure types the run and the API share. */
export const BULK_EXPORT_TOO_LARGE = 'bulk-export-too-large';

/** The hourly expiry's input: files written longer ago than this (BULK_EXPORT_RETENTION) are deleted. */
export interface BulkExportExpiryInput {
  retention: string;
}

export interface BulkExportExpiryResult {
  expired: number;
}

/** The retention when BULK_EXPORT_RETENTION is not configured. */
export const DEFAULT_BULK_EXPORT_RETENTION = '7d';
