import { workflowIds } from '../../common/ids';
import type { analysisWorkflow } from '../analysis';
import { startOrJoinChild } from '../lib';

/** Runs recorded after this patch start an analysis run for every test they route. */
export const ANALYSIS_RUNS_PATCH = 'start-analysis-runs';

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
