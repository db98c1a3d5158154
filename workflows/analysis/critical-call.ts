import { patched, WorkflowIdReusePolicy } from '@temporalio/workflow';
import type { AnalysisRef } from '../../activities/results';
import type { CriticalCallInput } from '../../common/critical-calls';
import type { criticalCallWorkflow } from '../critical-call';
import { startOrJoinChild } from '../lib';

/**
 * A result the recording step flagged critical starts its call run, a child that outlives this one (ABANDON: the
 * analysis may be verified and released long before anyone is reached). The ID is the business key, so an edit that
 * is critical again joins the call already running, and REJECT_DUPLICATE keeps a call that ended from starting
 * twice. Runs recorded before critical calls existed replay without this step.
 */
export async function callIfCritical(ref: AnalysisRef | null, callWorkflowId: string | undefined): Promise<void> {
  if (!ref || !callWorkflowId || !patched('critical-call')) return;
  const input: CriticalCallInput = {
    analysisWorkflowId: ref.workflowId,
    analysisId: ref.analysisId,
    accession: ref.accession,
    test: ref.test,
    retestNumber: ref.retestNumber,
  };
  await startOrJoinChild<typeof criticalCallWorkflow>('criticalCallWorkflow', {
    workflowId: callWorkflowId,
    args: [input],
    workflowIdReusePolicy: WorkflowIdReusePolicy.REJECT_DUPLICATE,
  });
}
