/**
 * Contracts of the ERP sync, safe inside the workflow bundle. Entities are synced in this order, so a purchase
 * order finds its supplier and items, and deletions come last.
 */
export const ERP_ENTITIES = ['suppliers', 'items', 'purchase_orders', 'purchase_receipts', 'deletions'] as const;
export type ErpEntity = (typeof ERP_ENTITIES)[number];

/** Position in the ERP's change feed: the last stored row's site-local `modified` text and its name. */
export interface ErpCursor {
  modified: string;
  name: string;
}

/** (modified, name) order, as the ERP sorts with `order_by=modified asc, name asc`. */
export function afterCursor(row: ErpCursor, cursor: ErpCursor | null): boolean {
  if (!cursor) return true;
  if (row.modified !== cursor.modified) return row.modified > cursor.modified;
  return row.name > cursor.name;
}

export type ErpSyncMode = 'incremental' | 'reconcile';

export interface ErpSyncInput {
  /** 'all' or one entity; names the run (erp-sync:<scope>). */
  scope: 'all' | ErpEntity;
  mode?: ErpSyncMode;
  requestedBy?: string;
  /** Rows per ERP page; the worker's ERP_PAGE_SIZE when absent. */
  pageSize?: number;
  /** Pages one activity stores before it returns to the workflow. */
  pagesPerActivity?: number;
  /** Activities per run before it continues as new. */
  activitiesPerRun?: number;
  heartbeatTimeout?: string;
  /** Set by the run itself when it continues as new. */
  resume?: { syncRunId: string; entityIndex: number; midEntity?: boolean };
}

export interface EntityCounts {
  fetched: number;
  stored: number;
  deadLettered: number;
  deleted: number;
}

export interface ErpSyncResult {
  syncRunId: string;
  scope: string;
  mode: ErpSyncMode;
  state: 'completed' | 'failed' | 'skipped';
  error?: string;
}

/** Failure types raised by the ERP adapter; the auth/config ones are not retried. */
export const ErpFailure = {
  Auth: 'ErpAuthFailed',
  RateLimited: 'ErpRateLimited',
  Unavailable: 'ErpUnavailable',
  Timeout: 'ErpTimeout',
  NotConfigured: 'ErpNotConfigured',
  Refused: 'ErpRefused',
} as const;

export const entitiesOf = (scope: ErpSyncInput['scope']): ErpEntity[] => (scope === 'all' ? [...ERP_ENTITIES] : [scope]);

/** One record as the ERP adapter hands it over; field names in `fields` and `children` are labflow's columns. */
export interface ErpRecord {
  name: string;
  /** The ERP's own change marker, sent back unchanged in the next request (site-local for ERPNext). */
  modified: string;
  docstatus: 0 | 1 | 2;
  fields: Record<string, unknown>;
  children?: Record<string, unknown>[];
}

/** A row the ERP refused to hand over (e.g. a 417 on its detail); it goes to the dead letters, the page goes on. */
export interface RefusedRecord {
  name: string;
  modified: string;
  reason: string;
  errorType: string;
  payload: Record<string, unknown>;
}
