import { WorkflowExecutionAlreadyStartedError } from '@temporalio/common';
import type { ApiDeps } from '../deps';
import type { deliverEmailsWorkflow } from '../../workflows';

/**
 * Hands emails the API queued in the outbox to the worker for delivery. The key names the event the emails are
 * about, so a retried request does not deliver twice. A delivery that cannot be started is logged and left in the
 * outbox (the in-app notification stands either way): the action it reports has already committed.
 */
export async function deliverQueuedEmails(deps: Pick<ApiDeps, 'temporal' | 'config' | 'log'>, key: string, outboxIds: string[]): Promise<void> {
  if (!outboxIds.length) return;
  try {
    await deps.temporal.workflow.start<typeof deliverEmailsWorkflow>('deliverEmailsWorkflow', {
      workflowId: `deliver-emails:${key}`,
      taskQueue: deps.config.taskQueue,
      args: [outboxIds],
    });
  } catch (err) {
    if (err instanceof WorkflowExecutionAlreadyStartedError) return;
    deps.log.error({ key, err: err instanceof Error ? err.name : String(err) }, 'could not start the delivery of queued emails');
  }
}
