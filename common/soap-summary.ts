import { defineQuery, defineSignal, defineUpdate } from '@temporalio/workflow';
import type { Actor } from './roles';
import type { SignatureInput } from './signatures';

/**
 * The summary of a patient's SOAP notes as a durable run. The run carries IDs, hashes and metadata only: the notes
 * and the summary live in PostgreSQL, read and written by activities.
 */
export const SUMMARY_STAGES = [
  'requested',
  'generating',
  'validating',
  'ready',
  'approved',
  'edited',
  'rejected',
  'failed_all_providers',
  'superseded',
  'cancelled',
] as const;
export type SummaryStage = (typeof SUMMARY_STAGES)[number];
export const FINAL_SUMMARY_STAGES: readonly SummaryStage[] = [
  'approved',
  'edited',
  'rejected',
  'failed_all_providers',
  'superseded',
  'cancelled',
];

/** Summarizers by name: the LLM providers, then the local extractive one as the last resort. */
export type Summarizer = 'anthropic' | 'openai' | 'ollama' | 'extractive';

export interface SummaryAttemptPolicy {
  /** Per-attempt timeout of one provider call, e.g. '60s'. */
  timeout: string;
  /** Attempts at one provider (429, 5xx, timeouts) before the next provider. */
  maxAttempts: number;
  /** Output budget of the first call; a truncated answer is tried once more with twice as much. */
  maxTokens: number;
  /** A Retry-After longer than this moves on to the next provider instead of waiting. */
  maxRetryAfter: string;
}

export interface SummaryInput {
  patientId: string;
  notesHash: string;
  requestedBy: { userId: string; username: string };
  /** In order of preference, each tried once in turn; the API puts the extractive summarizer last when enabled. */
  providers: Summarizer[];
  attempt: SummaryAttemptPolicy;
  /** A provider's own per-attempt timeout, where it differs from `attempt.timeout` (e.g. a local Ollama). */
  timeouts?: Partial<Record<Summarizer, string>>;
  /** Regenerations allowed after a reviewer rejects a summary. */
  maxRounds: number;
}

/** One call of one summarizer as the run saw it; the database holds every retry of it. */
export interface AttemptRecord {
  round: number;
  provider: Summarizer;
  outcome: string;
  maxTokens: number | null;
}

export interface SummaryReview {
  decision: 'approve' | 'edit' | 'reject';
  by: string;
  at: string;
}

export interface SummaryState {
  workflowId: string;
  patientId: string;
  notesHash: string;
  stage: SummaryStage;
  round: number;
  providers: Summarizer[];
  attempts: AttemptRecord[];
  /** The summarizer whose output became the summary of this round. */
  provider: Summarizer | null;
  model: string | null;
  aiGenerated: boolean | null;
  summaryId: string | null;
  /** SHA-256 of the summary text: what an approving signature names. */
  contentHash: string | null;
  reviews: SummaryReview[];
  endedBecause: string | null;
}

export interface ReviewSummaryArgs {
  actor: Actor;
  /** The ID of the grant the API wrote for this review (action 'soap.review'); the recording step consumes it. */
  grant: string;
  decision: 'approve' | 'edit' | 'reject';
  summaryId: string;
  /** Approve and edit are signed; the API has re-authenticated the signer. */
  signature?: SignatureInput;
  /** Edit: the edited text, stored by the API beforehand; the run names it by ID only. */
  editId?: string;
  /** The reviewer's comment, stored by the API beforehand like an edit: free text about a patient stays out of history. */
  commentId?: string;
  /** Reject: make a new summary (default) or end the job. */
  regenerate?: boolean;
}

export interface SupersedeArgs {
  reason: 'notes_changed' | 'new_request';
  /** The job that replaces this one, when there is one. */
  by?: string;
}

/**
 * The actions of a summary job that a grant or Postgres must prove. A review is a person's action and carries a
 * grant the API wrote; a supersession is labflow's own notice, believed only when Postgres records that the job's
 * notes are no longer the patient's notes (the name stands in the security trail when it is not).
 */
export const SOAP_ACTIONS = ['soap.review', 'soap.supersede'] as const;
export type SoapAction = (typeof SOAP_ACTIONS)[number];

/**
 * What a review grant binds: the decision on one summary, the stored edit and comment it names, whether a
 * rejection asks for another round, and the signature's meaning, content hash and time. Both the API (writing the
 * grant) and the recording activity (consuming it) build it from what each holds.
 */
export const soapGrantedArgs = {
  review: (a: {
    summaryId: string;
    decision: string;
    editId?: string | null;
    commentId?: string | null;
    regenerate?: boolean | null;
    signature?: { meaning: string; contentHash: string; signedAt: string } | null;
  }) => ({
    summaryId: a.summaryId,
    decision: a.decision,
    editId: a.editId ?? null,
    commentId: a.commentId ?? null,
    regenerate: a.decision === 'reject' ? (a.regenerate ?? true) : null,
    signature: a.signature ? { meaning: a.signature.meaning, contentHash: a.signature.contentHash, signedAt: a.signature.signedAt } : null,
  }),
};

export const summaryStateQuery = defineQuery<SummaryState>('summaryState');
export const reviewSummaryUpdate = defineUpdate<SummaryState, [ReviewSummaryArgs]>('reviewSummary');
export const supersedeSummarySignal = defineSignal<[SupersedeArgs]>('supersedeSummary');
