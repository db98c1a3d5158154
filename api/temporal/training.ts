import type { Client } from '@temporalio/client';
import { WorkflowExecutionAlreadyStartedError } from '@temporalio/common';
import { Assignees, EntityId, EntityType, Stage } from '../../common/search-attributes';
import { assignmentEndedSignal, trainingIds, type AssignmentEnding, type TrainingAssignmentInput } from '../../common/training';
import type { trainingAssignmentWorkflow } from '../../workflows';

/** An assignment's run, to query or update. */
export function assignmentRun(client: Client, workflowId: string) {
  return client.workflow.getHandle<typeof trainingAssignmentWorkflow>(workflowId);
}

/**
 * Starts an assignment run under its business key (a role gained while the version is effective); an existing run
 * under the key counts as started. The run opens the assignment only when Postgres bears it out.
 */
export async function startAssignmentRun(client: Client, taskQueue: string, input: TrainingAssignmentInput): Promise<string> {
  const workflowId = trainingIds.assignment(input.username, input.documentNumber, input.version);
  await client.workflow
    .start<typeof trainingAssignmentWorkflow>('trainingAssignmentWorkflow', {
      workflowId,
      taskQueue,
      args: [input],
      workflowIdConflictPolicy: 'USE_EXISTING',
      typedSearchAttributes: [
        { key: EntityType, value: 'training' },
        { key: EntityId, value: `${input.documentNumber}:v${input.version}` },
        { key: Stage, value: 'opening' },
        { key: Assignees, value: [`user:${input.username}`] },
      ],
    })
    .catch((err) => {
      if (!(err instanceof WorkflowExecutionAlreadyStartedError)) throw err;
    });
  return workflowId;
}

/** Asks open assignment runs to end; each believes the reason only when Postgres bears it out. A finished run is skipped. */
export async function endAssignments(client: Client, workflowIds: string[], reason: AssignmentEnding): Promise<void> {
  await Promise.all(workflowIds.map((id) => assignmentRun(client, id).signal(assignmentEndedSignal, { reason }).catch(() => undefined)));
}
