import { WorkflowExecutionAlreadyStartedError } from '@temporalio/common';
import { ParentClosePolicy, startChild, type ChildWorkflowOptions, type Workflow, type WithWorkflowArgs } from '@temporalio/workflow';

/**
 * Starts a run that outlives this one (abandoned on close), or joins the one already running under its ID: a
 * retried step, a continue-as-new or another caller may have started it first, and that counts as started.
 * Returns whether this call started it.
 */
export async function startOrJoinChild<W extends Workflow>(
  workflowType: string,
  options: WithWorkflowArgs<W, ChildWorkflowOptions & { workflowId: string }>,
): Promise<boolean> {
  try {
    await startChild<W>(workflowType, { parentClosePolicy: ParentClosePolicy.ABANDON, ...options } as WithWorkflowArgs<
      W,
      ChildWorkflowOptions
    >);
    return true;
  } catch (err) {
    if (err instanceof WorkflowExecutionAlreadyStartedError) return false;
    throw err;
  }
}
