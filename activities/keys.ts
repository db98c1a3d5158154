import { Context } from '@temporalio/activity';

/**
 * An idempotency key for this activity execution: the same across retries of one activity (and after a worker
 * crash), different for every other activity. Writes that must happen once use it.
 */
export function activityKey(suffix = ''): string {
  const { workflowExecution, activityId } = Context.current().info;
  const run = workflowExecution ? `${workflowExecution.workflowId}:${workflowExecution.runId}` : 'standalone';
  return `${run}:${activityId}${suffix ? `:${suffix}` : ''}`;
}
