import type { ErpCursor, ErpEntity, ErpRecord, RefusedRecord } from '../../common/erp-sync';

export type { ErpRecord, RefusedRecord };

/**
 * What labflow needs from an ERP, in labflow's terms. ERPNext is the first implementation (erpnext.ts); an Odoo or
 * SAP adapter implements the same interface. Field names in `fields` and `children` are labflow's column names.
 */
export interface ErpPage {
  records: ErpRecord[];
  refused: RefusedRecord[];
  /** The last row of the list the ERP answered with; a short page ends the list. */
  last: ErpCursor | null;
  end: boolean;
}

export interface ErpKey {
  name: string;
  modified: string;
  docstatus: number;
}

export type SupplierStatus = 'approved' | 'suspended' | 'disqualified';

export interface SupplierStatusWrite {
  supplier: string;
  status: SupplierStatus;
  /** labflow's ID of the decision: the ERP-side record is created under this name, so a repeat is detectable. */
  eventKey: string;
  note: string;
  /** A previous attempt may have written already (its outcome is unknown): look up before creating. */
  outcomeUnknown: boolean;
}

export interface SupplierStatusResult {
  created: 'created' | 'found' | 'duplicate';
  hold: 'updated' | 'unchanged';
  modified: string;
  conflicts: number;
}

export interface ErpAdapter {
  readonly system: string;
  /** Rows changed after the cursor, in (modified, name) order, rows at or before the cursor dropped. */
  fetchChanges(entity: ErpEntity, after: ErpCursor | null, limit: number): Promise<ErpPage>;
  /** One record by name with its child rows; null when the ERP no longer has it. */
  fetchOne(entity: ErpEntity, name: string): Promise<ErpRecord | RefusedRecord | null>;
  /** Every live record's key, for reconciliation, paged by name. */
  listKeys(entity: ErpEntity, afterName: string | null, limit: number): Promise<ErpKey[]>;
  writeSupplierStatus(write: SupplierStatusWrite): Promise<SupplierStatusResult>;
}

export const isRefused = (r: ErpRecord | RefusedRecord): r is RefusedRecord => 'reason' in r;
