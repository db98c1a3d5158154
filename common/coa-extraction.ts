import { defineQuery, defineUpdate } from '@temporalio/workflow';
import type { Actor } from './roles';

/** The run of one certificate's extraction; it carries IDs only (the text stays in Postgres). */
export const coaWorkflowId = (extractionId: string) => `coa-extraction:${extractionId}`;

export type CoaStage = 'requested' | 'proposed' | 'confirmed' | 'rejected';

/** The LLM providers an extraction may ask, in order (the extractive summarizer is not one: rules come last). */
export type CoaProvider = 'anthropic' | 'openai' | 'ollama';

export interface CoaExtractionInput {
  extractionId: string;
  /**
   * The providers to ask in order, each its own activity retried per the error table, and the attempt policy the
   * summary uses (timeout, tries, output budget). Runs started without them ask every provider once, in one step.
   */
  providers?: CoaProvider[];
  attempt?: { timeout: string; maxAttempts: number; maxTokens: number };
}

/** What one provider activity answers: its attempt row, and whether the answer passed validation. */
export interface CoaAttemptResult {
  attemptId: string;
  ok: boolean;
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

export interface RejectCoaArgs {
  actor: Actor;
  grant: string;
  reason: string;
}

export const COA_ACTIONS = ['coa.confirm', 'coa.reject'] as const;

/** What a confirmation grant binds: the extraction and exactly the fields to record. */
export const coaGrantedArgs = {
  confirm: (a: { extractionId: string; fields: CoaConfirmedFields }) => ({ extractionId: a.extractionId, fields: a.fields }),
  reject: (a: { extractionId: string; reason: string }) => ({ extractionId: a.extractionId, reason: a.reason }),
};

export const confirmCoaUpdate = defineUpdate<CoaExtractionState, [ConfirmCoaArgs]>('confirmCoa');
export const rejectCoaUpdate = defineUpdate<CoaExtractionState, [RejectCoaArgs]>('rejectCoa');
export const coaStateQuery = defineQuery<CoaExtractionState>('coaState');
