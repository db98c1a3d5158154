import { WorkflowNotFoundError, type Client, type WorkflowExecutionDescription, type WorkflowHandle } from '@temporalio/client';
import { documentStateQuery, type DocumentApprovalState } from '../../common/document-approval';
import { ALL_SEARCH_ATTRIBUTES } from '../../common/search-attributes';
import { DECISION_FROM, type SupplierDecision, type SupplierQualificationStatus } from '../../common/supplier-qualification';
import { appendAudit } from '../../db/audit';
import type { Db } from '../../db/knex';
import type { Actor } from '../../common/roles';
import { problems } from '../problem';

/** Something a person can do next on a run, who may do it (assignee keys, or 'author'), and by when if it is due. */
export interface PendingAction {
  action: string;
  by: string[];
  dueAt?: string;
}

type SearchAttributes = Record<string, unknown>;

/** What a person can do next on a document-approval run, and who. */
function documentPendingActions(state: DocumentApprovalState): PendingAction[] {
  switch (state.state) {
    case 'in_review':
      return [
        { action: 'decide', by: state.pendingAssignees },
        { action: 'reassign', by: ['role:document_control'] },
        { action: 'extend', by: ['role:document_control'] },
        { action: 'withdraw', by: ['author', 'role:document_control'] },
      ];
    case 'changes_requested':
      return [
        { action: 'revision', by: state.pendingAssignees },
        { action: 'withdraw', by: ['author', 'role:document_control'] },
      ];
    case 'approved':
      return [{ action: 'withdraw', by: ['author', 'role:document_control'] }];
    case 'effective':
      return [
        ...(state.periodicReviewOpen ? [{ action: 'periodic-review', by: ['role:document_control'] }] : []),
        { action: 'obsolete', by: ['role:document_control'] },
      ];
    default:
      return [];
  }
}

/** QA's decisions on a supplier: those its status allows (its stage), by QA. */
export function supplierPendingActions(attrs: SearchAttributes): PendingAction[] {
  const status = attrs.Stage as SupplierQualificationStatus | null;
  return (Object.keys(DECISION_FROM) as SupplierDecision[])
    .filter((decision) => status !== null && DECISION_FROM[decision].includes(status))
    .map((decision) => ({ action: decision, by: ['role:qa_manager'] }));
}

/**
 * Every other process publishes who must act at its stage and by when (the Assignees, Stage and DueAt search
 * attributes, upserted on each stage change): the stage is the action pending, the assignees may take it.
 */
export function stagePendingActions(attrs: SearchAttributes): PendingAction[] {
  const by = (attrs.Assignees as string[] | null) ?? [];
  const stage = attrs.Stage as string | null;
  if (!by.length || !stage) return [];
  const dueAt = attrs.DueAt instanceof Date ? attrs.DueAt.toISOString() : null;
  return [{ action: stage, by, ...(dueAt ? { dueAt } : {}) }];
}

/** The pending actions of a running run, and the state they were read from where the run was asked for it. */
async function pendingActionsOf(
  handle: WorkflowHandle,
  description: WorkflowExecutionDescription,
  attrs: SearchAttributes,
): Promise<{ pendingActions: PendingAction[]; state: unknown }> {
  if (description.status.name !== 'RUNNING') return { pendingActions: [], state: null };
  switch (description.type) {
    case 'documentApprovalWorkflow': {
      const state = await handle.query(documentStateQuery);
      return { pendingActions: documentPendingActions(state), state };
    }
    case 'supplierQualificationWorkflow':
      return { pendingActions: supplierPendingActions(attrs), state: null };
    default:
      return { pendingActions: stagePendingActions(attrs), state: null };
  }
}

async function describeRun(temporal: Client, workflowId: string) {
  const handle = temporal.workflow.getHandle(workflowId);
  const description = await handle.describe().catch((err) => {
    throw err instanceof WorkflowNotFoundError ? problems.notFound(`workflow run ${workflowId}`) : err;
  });
  return { handle, description };
}

/** Any run by its workflow ID: what Temporal knows of it, its search attributes, and what is pending on it. */
export async function runOverview(temporal: Client, workflowId: string) {
  const { handle, description } = await describeRun(temporal, workflowId);
  const searchAttributes: SearchAttributes = Object.fromEntries(
    ALL_SEARCH_ATTRIBUTES.map((key) => [key.name, description.typedSearchAttributes.get(key) ?? null]),
  );
  const { pendingActions, state } = await pendingActionsOf(handle, description, searchAttributes);
  return {
    workflowId: description.workflowId,
    runId: description.runId,
    type: description.type,
    status: description.status.name,
    taskQueue: description.taskQueue,
    startTime: description.startTime,
    closeTime: description.closeTime ?? null,
    historyLength: description.historyLength,
    stage: (searchAttributes.Stage as string | null) ?? null,
    searchAttributes,
    pendingActions,
    state,
  };
}

/** Cancels a running run; the request and its reason are in the audit trail before the run hears of it. */
export async function cancelRun(db: Db, temporal: Client, actor: Actor, workflowId: string, reason: string): Promise<void> {
  const { handle, description } = await describeRun(temporal, workflowId);
  if (description.status.name !== 'RUNNING') throw problems.conflict('run-finished', `the run is ${description.status.name.toLowerCase()}`);
  await appendAudit(db, {
    actorId: actor.userId,
    actor: actor.username,
    action: 'workflow.cancel_requested',
    entityType: 'workflow',
    entityId: workflowId,
    details: { reason, runId: description.runId },
  });
  await handle.cancel();
}
