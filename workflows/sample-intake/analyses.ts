import { getExternalWorkflowHandle, patched, type SignalDefinition } from '@temporalio/workflow';
import { criticalCallRecordChangedSignal } from '../../common/critical-calls';
import { workflowIds } from '../../common/ids';
import type { analysisWorkflow } from '../analysis';
import type { ReportInput } from '../../common/reports';
import { analysisRecordChangedSignal } from '../../common/reports';
import { db, startOrJoinChild } from '../lib';

/** Runs recorded after this patch start an analysis run for every test they route. */
export const ANALYSIS_RUNS_PATCH = 'start-analysis-runs';
/** Runs recorded after this patch cancel the open analyses of the tests a rejection takes. */
export const CANCEL_ANALYSES_PATCH = 'cancel-analyses-of-rejection';
/** Runs recorded after this patch start a report for a specimen rejected in full (its condition and disposition). */
export const REPORT_REJECTED_SPECIMEN_PATCH = 'report-rejected-specimen';
/** Runs recorded after this patch complete when every test is released or cancelled, not on instrument results. */
export const FOLLOW_TESTS_PATCH = 'complete-when-tests-released';
/** Runs recorded after this patch tell the runs of the calls a rejection withdrew on retested analyses. */
export const TELL_SUPERSEDED_CALLS_PATCH = 'rejection-tells-withdrawn-calls';

/**
 * Starts the result run of each routed test, `analysis:<accession>:<test>`, outliving the sample's run. A test
 * routed again (to another piece) joins the run it already has.
 */
export async function startAnalyses(sampleId: string, accession: string, tests: string[]): Promise<void> {
  for (const test of tests) {
    await startOrJoinChild<typeof analysisWorkflow>('analysisWorkflow', {
      workflowId: workflowIds.analysis(accession, test),
      args: [{ sampleId, accession, test, retestNumber: 1, retestOf: null }],
    });
  }
}

/** Signals a run to look at its record; a run that has ended already is not told. */
const tell = (workflowId: string, signal: SignalDefinition<[]>) =>
  getExternalWorkflowHandle(workflowId)
    .signal(signal)
    .catch(() => undefined);

/**
 * Cancels the open analyses of rejected tests in Postgres, then tells their runs to look at their records, and the
 * runs of the critical-value calls it withdrew on retested analyses (whose analysis runs have ended) to look at theirs.
 */
export async function cancelAnalysesOfRejection(sampleId: string, accession: string, tests: string[]): Promise<void> {
  const { workflowIds: runs, supersededCalls = [] } = await db.cancelAnalysesOfRejection({ sampleId, accession, tests });
  for (const workflowId of runs) await tell(workflowId, analysisRecordChangedSignal);
  if (supersededCalls.length && patched(TELL_SUPERSEDED_CALLS_PATCH)) {
    for (const workflowId of supersededCalls) await tell(workflowId, criticalCallRecordChangedSignal);
  }
}

/**
 * A specimen rejected in full is reported too (42 CFR 493.1291(c)(7)): its condition and disposition, and each test
 * it took, in `report:<accession>:v1`, released by the lab director like any report. Postgres decides whether it is
 * due (no report yet, nothing still open); a run of an analysis cancelled by the same rejection may start it first,
 * and then this one joins it.
 */
export async function reportRejectedSpecimen(sampleId: string, accession: string): Promise<void> {
  const { workflowId } = await db.reportDue({ sampleId, accession });
  if (!workflowId) return;
  const args: ReportInput = { sampleId, accession, version: 1, corrects: null };
  await startOrJoinChild('reportWorkflow', { workflowId, args: [args] });
}
