import { getExternalWorkflowHandle, patched, WorkflowIdReusePolicy } from '@temporalio/workflow';
import type { AnalysisRef } from '../../activities/results';
import { CRITICAL_CALL_WITHDRAWAL_PATCH, criticalCallRecordChangedSignal, type CriticalCallInput } from '../../common/critical-calls';
import type { criticalCallWorkflow } from '../critical-call';
import { startOrJoinChild } from '../lib';

/**
 * A result the recording step flagged critical starts its call run, a child that outlives this one (ABANDON: the
 * analysis may be verified and released long before anyone is reached). The recording step chose the ID from the
 * record: the open call's (an edit that is critical again joins the call already running), or a new call's, numbered
 * after a withdrawn or confirmed one; REJECT_DUPLICATE keeps a call that ended from starting twice. Runs recorded
 * before critical calls existed replay without this step.
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

/**
 * Tells a call's run that the analysis's recording step withdrew it (the value stopped being critical): a signal
 * without arguments, so the history holds the call's ID only; the call's run reads the record. A run already ended is
 * not told. Runs recorded before withdrawals existed replay without this step. Answers whether it was sent.
 */
export async function tellCallWithdrawn(callWorkflowId: string): Promise<boolean> {
  if (!patched(CRITICAL_CALL_WITHDRAWAL_PATCH)) return false;
  await getExternalWorkflowHandle(callWorkflowId)
    .signal(criticalCallRecordChangedSignal)
    .catch(() => undefined);
  return true;
}
