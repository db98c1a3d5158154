import { z } from 'zod';
import type { ApiDeps } from '../deps';
import { route, type RouteSpec } from '../route';
import * as R from '../schemas/responses';
import { cancelRun, runOverview } from '../services/operations';
import { text } from '../schemas/common';

const OPERATORS = ['it_operator', 'qa_manager', 'document_control'] as const;
const workflowParams = z.object({ workflowId: z.string().min(1).max(400) });

export function workflowRoutes({ db, temporal }: ApiDeps): RouteSpec[] {
  return [
    route({
      method: 'get',
      path: '/workflows/:workflowId',
      response: R.runOverview,
      summary: 'Any run by its workflow ID: type, status, stage, search attributes and pending actions',
      tag: 'operations',
      roles: OPERATORS,
      params: workflowParams,
      handler: async ({ params, ctx }) => {
        ctx.body = await runOverview(temporal, params.workflowId);
      },
    }),
    route({
      method: 'post',
      path: '/workflows/:workflowId/cancel',
      response: { 202: R.cancelRequested }, problems: [409],
      summary: 'Cancel a running run (admins; reason required, recorded in the audit trail)',
      tag: 'operations',
      roles: ['admin'],
      params: workflowParams,
      body: z.strictObject({ reason: text(2000) }),
      handler: async ({ params, body, actor, ctx }) => {
        await cancelRun(db, temporal, actor, params.workflowId, body.reason);
        ctx.status = 202;
        ctx.body = { workflowId: params.workflowId, status: 'cancel_requested' };
      },
    }),
  ];
}
