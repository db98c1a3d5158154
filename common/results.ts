import { defineQuery, defineUpdate } from '@temporalio/workflow';
import type { Actor } from './roles';
import type { SignatureInput } from './signatures';

/**
 * A routed test's result, from entry to release: one run per analysis, `analysis:<accession>:<test>[:<n>]`. The
 * run carries IDs only (the sample, the test, the entry a person wrote, user IDs); values, units and flags stay in
 * Postgres. Bundle-safe.
 */
export const ANALYSIS_STATES = [
  'pending',
  'resulted',
  'to_be_verified',
  'autoverified',
  'verified',
  'released',
  'retracted',
  'rejected',
  'cancelled',
] as const;
export type AnalysisStateName = (typeof ANALYSIS_STATES)[number];
/** States after which nothing more happens to an analysis. */
export const FINAL_ANALYSIS_STATES: readonly AnalysisStateName[] = ['released', 'retracted', 'rejected', 'cancelled'];

export const FLAGS = ['normal', 'low', 'high', 'warning_low', 'warning_high', 'critical_low', 'critical_high', 'invalid'] as const;
export type Flag = (typeof FLAGS)[number];

/** How a test's results are verified (test_result_policies). */
export interface VerificationPolicy {
  /** Whether whoever entered or edited the result may verify it. */
  selfVerification: boolean;
  /** Verifications needed before the result counts as verified. */
  verificationsRequired: number;
  /** `distinct`: every verification by a different person; `not_consecutive`: the same person, but never twice in a row. */
  multiVerification: 'distinct' | 'not_consecutive';
}

export interface AnalysisInput {
  sampleId: string;
  accession: string;
  test: string;
  retestNumber: number;
  /** The run this one repeats. */
  retestOf: string | null;
}

export interface AnalysisState {
  workflowId: string;
  accession: string;
  test: string;
  retestNumber: number;
  retestOf: string | null;
  state: AnalysisStateName;
  policy: VerificationPolicy | null;
  /** The entry (a row in Postgres) that holds the current value; never the value itself. */
  entryId: string | null;
  /** User IDs of everyone who entered or edited the current result. */
  enteredBy: string[];
  /** User IDs of the verifications, in order. */
  verifiedBy: string[];
  /** The run of the retest that froze this one. */
  retestedBy: string | null;
  frozen: boolean;
  /** The autoverification rule set's verdict on the submitted result (absent before one judged it). */
  autoverification?: { outcome: 'passed' | 'failed' | 'no-rule-set'; version: number | null };
  /** Set when the instrument path submitted the result (the instrument and its performer are on record in Postgres). */
  submittedBy?: 'instrument';
}

interface Proven {
  actor: Actor;
  grant: string;
}
export type EnterResultArgs = Proven & { entryId: string };
export type SubmitArgs = Proven;
export type VerifyArgs = Proven & { signature: SignatureInput };
export type ReleaseArgs = Proven & { signature: SignatureInput };
export type ReasonArgs = Proven & { reason: string };
export type RetestArgs = Proven;

export const analysisStateQuery = defineQuery<AnalysisState>('analysisState');
export const enterResultUpdate = defineUpdate<AnalysisState, [EnterResultArgs]>('enterResult');
export const submitResultUpdate = defineUpdate<AnalysisState, [SubmitArgs]>('submitResult');
export const verifyResultUpdate = defineUpdate<AnalysisState, [VerifyArgs]>('verifyResult');
export const releaseResultUpdate = defineUpdate<AnalysisState, [ReleaseArgs]>('releaseResult');
export const retractResultUpdate = defineUpdate<AnalysisState, [ReasonArgs]>('retractResult');
export const rejectResultUpdate = defineUpdate<AnalysisState, [ReasonArgs]>('rejectResult');
export const cancelAnalysisUpdate = defineUpdate<AnalysisState, [ReasonArgs]>('cancelAnalysis');
export const retestAnalysisUpdate = defineUpdate<AnalysisState, [RetestArgs]>('retestAnalysis');

export const ANALYSIS_ACTIONS = [
  'analysis.enter',
  'analysis.submit',
  'analysis.verify',
  'analysis.release',
  'analysis.retract',
  'analysis.reject',
  'analysis.cancel',
  'analysis.retest',
] as const;
export type AnalysisAction = (typeof ANALYSIS_ACTIONS)[number];

/** Who may take each action (an admin may take none of them: results are the lab's). */
export const ANALYSIS_ACTION_ROLES: Record<AnalysisAction, readonly string[]> = {
  'analysis.enter': ['lab_technician', 'lab_director'],
  'analysis.submit': ['lab_technician', 'lab_director'],
  'analysis.verify': ['lab_technician', 'lab_director'],
  'analysis.release': ['lab_director'],
  'analysis.retract': ['lab_technician', 'lab_director'],
  'analysis.reject': ['lab_technician', 'lab_director'],
  'analysis.cancel': ['lab_technician', 'lab_director'],
  'analysis.retest': ['lab_technician', 'lab_director'],
};
export const mayAnalysisAction = (action: AnalysisAction, roles: readonly string[]) =>
  ANALYSIS_ACTION_ROLES[action].some((role) => roles.includes(role));

/** What a grant binds per action: the arguments the run records, built alike by the API and the recording step. */
export function boundAnalysisArgs(action: AnalysisAction, request: unknown): unknown {
  const r = (request ?? {}) as { entryId?: unknown; reason?: unknown; signature?: SignatureInput };
  switch (action) {
    case 'analysis.enter':
      return { entryId: r.entryId ?? null };
    case 'analysis.verify':
    case 'analysis.release':
      return { signature: r.signature ? { meaning: r.signature.meaning, contentHash: r.signature.contentHash, signedAt: r.signature.signedAt } : null };
    case 'analysis.retract':
    case 'analysis.reject':
    case 'analysis.cancel':
      return { reason: r.reason ?? null };
    default:
      return {};
  }
}

/** A verification rule that refuses a person, named so the refusal says which. */
export type VerificationRule = 'self-verification' | 'distinct-verifiers' | 'consecutive-verification';

/**
 * Why this person may not verify now, or null. Whoever entered or edited the result may not verify it unless the
 * policy allows self-verification; with `distinct` nobody verifies twice; with `not_consecutive` nobody verifies
 * twice in a row (the last verifier is compared with the person, not a list with a name).
 */
export function verificationRefusal(
  policy: VerificationPolicy,
  enteredBy: readonly string[],
  verifiedBy: readonly string[],
  userId: string,
): { rule: VerificationRule; message: string } | null {
  if (!policy.selfVerification && enteredBy.includes(userId)) {
    return { rule: 'self-verification', message: 'whoever entered or edited a result may not verify it (self-verification is not allowed for this test)' };
  }
  if (policy.multiVerification === 'distinct' && verifiedBy.includes(userId)) {
    return { rule: 'distinct-verifiers', message: 'each verification of this test must be by a different person' };
  }
  if (policy.multiVerification === 'not_consecutive' && verifiedBy.at(-1) === userId) {
    return { rule: 'consecutive-verification', message: 'the same person may not verify this test twice in a row' };
  }
  return null;
}

/** A reference range as judged against: the snapshot kept with each result. */
export interface RangeSnapshot {
  id: string;
  version: number;
  sex: 'any' | 'female' | 'male';
  ageMinDays: number;
  ageMaxDays: number | null;
  unit: string;
  low: number | null;
  high: number | null;
  criticalLow: number | null;
  criticalHigh: number | null;
  /** Warning shoulders: between the reference limit and the critical limit (absent on older snapshots). */
  warningLow?: number | null;
  warningHigh?: number | null;
}

/** The flag of a numeric value against its range; no range, no flag (never a false "normal"). */
export function flagFor(value: number, range: RangeSnapshot | null): Flag | null {
  if (!range) return null;
  if (range.criticalLow !== null && value < range.criticalLow) return 'critical_low';
  if (range.criticalHigh !== null && value > range.criticalHigh) return 'critical_high';
  if (range.low !== null && value < range.low) return 'low';
  if (range.high !== null && value > range.high) return 'high';
  return 'normal';
}
