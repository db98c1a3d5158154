import type { Client, WorkflowHandle } from '@temporalio/client';
import { FINAL_VERSION_STATES, type DocumentApprovalInput, type RoutingStage } from '../../common/document-approval';
import { workflowIds } from '../../common/ids';
import { Assignees, EntityId, EntityType, Stage } from '../../common/search-attributes';
import type { VersionRow } from '../../db/documents';
import type { documentApprovalWorkflow } from '../../workflows';

export interface SubmitOptions {
  reminderBefore: string;
  periodicReview: string;
  effectiveDate?: string;
  submittedBy: string;
}

/** What a document-approval run needs to know about its version: IDs and hashes, never the text itself. */
export function approvalInput(row: VersionRow, routing: RoutingStage[], options: SubmitOptions): DocumentApprovalInput {
  return {
    documentId: row.document_id,
    documentNumber: row.number,
    title: row.title,
    versionId: row.id,
    version: row.version,
    author: { userId: row.author_id, username: row.author },
    contentHash: row.content_hash,
    routing,
    ...options,
  };
}

/**
 * Starts the run under its business key. The key never runs twice: a second start fails with
 * WorkflowExecutionAlreadyStartedError, which callers turn into "already submitted".
 */
export function startApprovalRun(client: Client, taskQueue: string, input: DocumentApprovalInput) {
  return client.workflow.start<typeof documentApprovalWorkflow>('documentApprovalWorkflow', {
    workflowId: workflowIds.documentApproval(input.documentNumber, input.version),
    taskQueue,
    args: [input],
    workflowIdConflictPolicy: 'FAIL',
    // A run that failed (one started without a valid submission grant fails at once) must not keep the key from
    // the real submission; the API still refuses a version that is no longer a draft.
    workflowIdReusePolicy: 'ALLOW_DUPLICATE_FAILED_ONLY',
    typedSearchAttributes: [
      { key: EntityType, value: 'document' },
      { key: EntityId, value: input.documentNumber },
      { key: Stage, value: 'in_review' },
      { key: Assignees, value: [] },
    ],
  });
}

/** A version's run, to query or update. */
export function approvalRun(client: Client, workflowId: string): WorkflowHandle<typeof documentApprovalWorkflow> {
  return client.workflow.getHandle(workflowId);
}

/**
 * The run to ask for live state, if any. A draft whose submission was just accepted has a run before its record
 * names it (the run's first activity writes the link), so a draft is looked up by its deterministic workflow ID.
 */
export function liveApprovalRun(client: Client, row: VersionRow): WorkflowHandle<typeof documentApprovalWorkflow> | null {
  if (FINAL_VERSION_STATES.includes(row.state)) return null;
  return approvalRun(client, row.workflow_id ?? workflowIds.documentApproval(row.number, row.version));
}
