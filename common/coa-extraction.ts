import { defineQuery, defineUpdate } from '@temporalio/workflow';
import type { Actor } from './roles';

/** The run of one certificate's extraction; it carries IDs only (the text stays in Postgres). */
export const coaWorkflowId = (extractionId: string) => `coa-extraction:${extractionId}`;

export type CoaStage = 'requested' | 'proposed' | 'confirmed';

export interface CoaExtractionInput {
  extractionId: string;
}

export interface CoaExtractionState {
  extractionId: string;
  stage: CoaStage;
  source: string | null;
  confirmedBy: string | null;
}

/** The fields a person confirms (as proposed, or corrected): the same shape the extraction proposes. */
export interface CoaConfirmedFields {
  supplier: string;
  product: string;
  lotNumber: string;
  expiryDate: string;
  parameters: { name: string; result: string; specification: string }[];
}

export interface ConfirmCoaArgs {
  actor: Actor;
  grant: string;
  fields: CoaConfirmedFields;
}

export const COA_ACTIONS = ['coa.confirm'] as const;

/** What a confirmation grant binds: the extraction and exactly the fields to record. */
export const coaGrantedArgs = {
  confirm: (a: { extractionId: string; fields: CoaConfirmedFields }) => ({ extractionId: a.extractionId, fields: a.fields }),
};

export const confirmCoaUpdate = defineUpdate<CoaExtractionState, [ConfirmCoaArgs]>('confirmCoa');
export const coaStateQuery = defineQuery<CoaExtractionState>('coaState');
