import { defineQuery, defineSignal, defineUpdate } from '@temporalio/workflow';
import type { Actor } from './roles';
import type { SignatureInput } from './signatures';

/**
 * A sample's report, one run per version: `report:<accession>:v<n>`. The run carries IDs only (the sample, the
 * report's row, user IDs); the report's content and PDF are in Postgres. Bundle-safe.
 */
export interface ReportInput {
  sampleId: string;
  accession: string;
  version: number;
  /** The released version this one corrects (its row ID), with the correction's reason kept in Postgres. */
  corrects: string | null;
}

export type ReportStateName = 'assembling' | 'awaiting_release' | 'released';

export interface ReportState {
  workflowId: string;
  accession: string;
  version: number;
  state: ReportStateName;
  reportId: string | null;
  corrects: string | null;
  /** The analyses the report shows (their runs' IDs), told once it is released. */
  analyses: string[];
  releasedBy: string | null;
}

export type ReleaseReportArgs = { actor: Actor; grant: string; signature: SignatureInput };

export const reportStateQuery = defineQuery<ReportState>('reportState');
export const releaseReportUpdate = defineUpdate<ReportState, [ReleaseReportArgs]>('releaseReport');

/**
 * "Look at your record": sent to an analysis run when its row moved in Postgres without it (released by a report,
 * cancelled with its rejected specimen). The run believes Postgres, never the signal.
 */
export const analysisRecordChangedSignal = defineSignal<[]>('analysisRecordChanged');
/** Sent to a sample's run when one of its analyses has ended; the run asks Postgres whether every test has. */
export const sampleTestsChangedSignal = defineSignal<[]>('sampleTestsChanged');

/** The action a report release grant is for, and what it binds. */
export const REPORT_RELEASE = 'report.release';
export const boundReportReleaseArgs = (r: { signature?: SignatureInput | null }) => ({
  signature: r.signature ? { meaning: r.signature.meaning, contentHash: r.signature.contentHash, signedAt: r.signature.signedAt } : null,
});

/** Analysis states a report counts as verified. */
export const REPORTABLE_STATES: readonly string[] = ['verified', 'autoverified', 'released'];
