import { WorkflowNotFoundError } from '@temporalio/common';
import { z } from 'zod';
import { documentStateQuery, type DocumentApprovalState } from '../../common/document-approval';
import { ALL_SEARCH_ATTRIBUTES } from '../../common/search-attributes';
import { appendAudit } from '../../db/audit';
import type { ApiDeps } from '../deps';
import { problems } from '../problem';
import { route, type RouteSpec } from '../route';
import { text } from '../schemas/common';

const OPERATORS = ['it_operator', 'qa_manager', 'document_control'] as const;
const workflowParams = z.object({ workflowId: z.string().min(1).max(400) });

/** What a person can do next on a document-approval run, and who. */
function documentPendingActions(state: DocumentApprovalState) {
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

export function workflowRoutes({ db, temporal }: ApiDeps): RouteSpec[] {
  return [
    route({
      method: 'get',
      path: '/workflows/:workflowId',
      summary: 'Any run by its workflow ID: type, status, stage, search attributes and pending actions',
      tag: 'operations',
      roles: OPERATORS,
      params: workflowParams,
      handler: async ({ params, ctx }) => {
        const handle = temporal.workflow.getHandle(params.workflowId);
        const description = await handle.describe().catch((err) => {
          throw err instanceof WorkflowNotFoundError ? problems.notFound(`workflow run ${params.workflowId}`) : err;
        });
        const searchAttributes = Object.fromEntries(
          ALL_SEARCH_ATTRIBUTES.map((key) => [key.name, description.typedSearchAttributes.get(key) ?? null]),
        );
        let state: DocumentApprovalState | null = null;
        if (description.type === 'documentApprovalWorkflow' && description.status.name === 'RUNNING') {
          state = await handle.query(documentStateQuery);
        }
        ctx.body = {
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
          pendingActions: state ? documentPendingActions(state) : [],
          state,
        };
      },
    }),
    route({
      method: 'post',
      path: '/workflows/:workflowId/cancel',
      summary: 'Cancel a running run (admins; reason required, recorded in the audit trail)',
      tag: 'operations',
      roles: ['admin'],
      params: workflowParams,
      body: z.strictObject({ reason: text(2000) }),
      handler: async ({ params, body, actor, ctx }) => {
        const handle = temporal.workflow.getHandle(params.workflowId);
        const description = await handle.describe().catch((err) => {
          throw err instanceof WorkflowNotFoundError ? problems.notFound(`workflow run ${params.workflowId}`) : err;
        });
        if (description.status.name !== 'RUNNING')
          throw problems.conflict('run-finished', `the run is ${description.status.name.toLowerCase()}`);
        await appendAudit(db, {
          actorId: actor.userId,
          actor: actor.username,
          action: 'workflow.cancel_requested',
          entityType: 'workflow',
          entityId: params.workflowId,
          details: { reason: body.reason, runId: description.runId },
        });
        await handle.cancel();
        ctx.status = 202;
        ctx.body = { workflowId: params.workflowId, status: 'cancel_requested' };
      },
    }),
  ];
}
