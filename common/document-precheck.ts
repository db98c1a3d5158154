import { defineQuery } from '@temporalio/workflow';

/**
 * The advisory compliance pre-check of a submitted document version. Its run carries IDs only: the version's text
 * and the findings stay in Postgres.
 */
export const precheckWorkflowId = (documentNumber: string, version: number) => `document-precheck:${documentNumber}:v${version}`;

/** The approval runs that start a pre-check do so behind this patch (runs started before it never start one). */
export const PRECHECK_PATCH = 'document-precheck';

export interface DocumentPrecheckInput {
  documentId: string;
  documentNumber: string;
  versionId: string;
  version: number;
}

export type PrecheckStage = 'running' | 'done' | 'failed';

export interface DocumentPrecheckState {
  versionId: string;
  stage: PrecheckStage;
  /** `anthropic` / `openai` / `ollama`, or `rule_based` when every provider failed. */
  source: string | null;
  /** Counts only: the findings are read from the API. */
  findings: { met: number; notMet: number; unclear: number; dropped: number } | null;
}

export const precheckStateQuery = defineQuery<DocumentPrecheckState>('precheckState');

export const FINDING_STATUSES = ['met', 'not_met', 'unclear'] as const;
export type FindingStatus = (typeof FINDING_STATUSES)[number];

/** One thing a reviewer looks for: a clause of a regulation or standard the lab holds its documents to. */
export interface ChecklistItem {
  /** Stable within the checklist, e.g. `P11-10e`. */
  id: string;
  /** The clause, e.g. `21 CFR 11.10(e)` or `ISO/IEC 17025:2017 8.3`. */
  clause: string;
  /** What the document should show to meet it. */
  lookFor: string;
  /** For the rule-based last resort: words or phrases a line meeting the item would hold. */
  keywords: string[];
}
