import { getExternalWorkflowHandle } from '@temporalio/workflow';
import { workflowIds } from '../../common/ids';
import type { analysisWorkflow } from '../analysis';
import { analysisRecordChangedSignal } from '../../common/reports';
import { db, startOrJoinChild } from '../lib';

/** Runs recorded after this patch start an analysis run for every test they route. */
export const ANALYSIS_RUNS_PATCH = 'start-analysis-runs';
/** Runs recorded after this patch cancel the open analyses of the tests a rejection takes. */
export const CANCEL_ANALYSES_PATCH = 'cancel-analyses-of-rejection';
/** Runs recorded after this patch complete when every test is released or cancelled, not on instrument results. */
export const FOLLOW_TESTS_PATCH = 'complete-when-tests-released';

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

/** Cancels the open analyses of rejected tests in Postgres, then tells their runs to look at their records. */
export async function cancelAnalysesOfRejection(sampleId: string, accession: string, tests: string[]): Promise<void> {
  const { workflowIds: runs } = await db.cancelAnalysesOfRejection({ sampleId, accession, tests });
  for (const workflowId of runs) {
    await getExternalWorkflowHandle(workflowId)
      .signal(analysisRecordChangedSignal)
      .catch(() => undefined);
  }
}
