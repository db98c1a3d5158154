import { patched } from '@temporalio/workflow';
import type { AnalysisRef } from '../../activities/results';
import type { AnalysisState } from '../../common/results';
import { db } from '../lib';

/**
 * After a submission, the test's newest signed autoverification rule set judges the result (in an activity, on
 * facts read from PostgreSQL): passing every rule, it is `autoverified` and then counted as `verified`; failing
 * one, it stays `to_be_verified` for a person, with the reasons on record. Runs started before rule sets existed
 * replay without this step.
 */
export async function autoverify(ref: AnalysisRef, state: AnalysisState, publish: () => void): Promise<void> {
  if (!patched('autoverification')) return;
  const judged = { workflowId: ref.workflowId, analysisId: ref.analysisId, accession: ref.accession, test: ref.test };
  const verdict = await db.autoverifyAnalysis(judged);
  state.autoverification = verdict;
  if (verdict.outcome !== 'passed') return;
  state.state = 'autoverified';
  publish();
  await db.countAutoverification(judged);
  state.state = 'verified';
  publish();
}
