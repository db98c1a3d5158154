import { defineQuery, defineSignal, defineUpdate } from '@temporalio/workflow';
import type { Actor } from './roles';

/** QA's verdict on a supplier, which labflow writes to the ERP as the supplier's hold status. */
export type SupplierQualificationStatus = 'pending' | 'approved' | 'suspended' | 'disqualified';
export type SupplierDecision = 'approve' | 'suspend' | 'disqualify';

export const DECISION_STATUS: Record<SupplierDecision, Exclude<SupplierQualificationStatus, 'pending'>> = {
  approve: 'approved',
  suspend: 'suspended',
  disqualify: 'disqualified',
};

/** From which states each decision may be taken; disqualification is final. */
export const DECISION_FROM: Record<SupplierDecision, SupplierQualificationStatus[]> = {
  approve: ['pending', 'suspended'],
  suspend: ['pending', 'approved'],
  disqualify: ['pending', 'approved', 'suspended'],
};

export interface SupplierQualificationInput {
  supplier: string;
  /** Where a new run starts (the projection's status when an earlier run was terminated). */
  status?: SupplierQualificationStatus;
  resume?: SupplierQualificationState;
}

/** QA's decision sent to the run by the API: who, why, and the single-use grant the API wrote for it. */
export interface SupplierDecisionArgs {
  actor: Actor;
  grant: string;
  reason: string;
}

/** The grant actions of supplier qualification, one per decision. */
export const SUPPLIER_ACTIONS = {
  approve: 'supplier.approve',
  suspend: 'supplier.suspend',
  disqualify: 'supplier.disqualify',
} as const;
export type SupplierGrantAction = (typeof SUPPLIER_ACTIONS)[SupplierDecision];

/** What a supplier decision's grant binds (built alike by the API and the recording activity). */
export const supplierGrantedArgs = (a: { reason: string }) => ({ reason: a.reason });

export type ErpWriteState = 'pending' | 'written' | 'skipped' | 'refused';

export interface SupplierDecisionRecord {
  seq: number;
  decision: SupplierDecision;
  status: Exclude<SupplierQualificationStatus, 'pending'>;
  by: string;
  at: string;
  reason: string;
  erp: ErpWriteState;
  erpDetail?: string;
  /** Recorded in Postgres; only then is it written to the ERP. */
  recorded: boolean;
  /** Where the decision was taken when not directly on this run, e.g. `capa:CAPA-2026-0007:closure:1`. */
  via?: string;
}

export interface SupplierQualificationState {
  workflowId: string;
  supplier: string;
  status: SupplierQualificationStatus;
  decisions: SupplierDecisionRecord[];
}

export const supplierQualificationQuery = defineQuery<SupplierQualificationState>('state');
export const approveSupplierUpdate = defineUpdate<SupplierQualificationState, [SupplierDecisionArgs]>('approve');
export const suspendSupplierUpdate = defineUpdate<SupplierQualificationState, [SupplierDecisionArgs]>('suspend');
export const disqualifySupplierUpdate = defineUpdate<SupplierQualificationState, [SupplierDecisionArgs]>('disqualify');
/**
 * QA's decision taken in another process (a CAPA's closure), judged by this run like the Updates. It carries no
 * grant: the recording step believes it only if Postgres holds that closure, signed, with this verdict on this
 * supplier, and records the signer as Postgres knows them.
 */
export interface ProcessDecisionArgs {
  actor: Actor;
  reason: string;
  decision: SupplierDecision;
  /** The deciding process and step; a decision that arrives twice is applied once. */
  via: string;
}
export const processDecisionSignal = defineSignal<[ProcessDecisionArgs]>('processDecision');
/**
 * Operators retry a refused ERP write (from the dead letters) once the ERP side is fixed; the run writes again only
 * if Postgres shows an operator asked for it (the supplier's dead letter is marked retry_requested).
 */
export const retryErpWriteSignal = defineSignal('retryErpWrite');

export const DECISION_UPDATES = {
  approve: approveSupplierUpdate,
  suspend: suspendSupplierUpdate,
  disqualify: disqualifySupplierUpdate,
} as const;
