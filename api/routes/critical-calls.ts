import type { z } from 'zod';
import type { ApiDeps } from '../deps';
import { phiAccessLog } from '../patient-access';
import { route, type RouteSpec } from '../route';
import { analysisParams } from '../schemas/results';
import {
  attemptBody,
  attemptResultAnswer,
  criticalCallAnswer,
  criticalCallListAnswer,
  criticalCallListQuery,
  type AttemptBody,
} from '../schemas/critical-calls';
import { criticalCallView, listCriticalCalls, logAttempt } from '../services/critical-calls';
import { FAILURE_HTTP_STATUS } from '../../common/failures';

const LAB = ['lab_technician', 'lab_director'] as const;
const TAG = 'critical calls';
type Params = z.infer<typeof analysisParams>;

export function criticalCallRoutes(deps: ApiDeps): RouteSpec[] {
  const { db } = deps;
  const phi = phiAccessLog(deps);
  return [
    route<Record<string, never>, z.infer<typeof criticalCallListQuery>>({
      method: 'get',
      path: '/critical-calls',
      summary: 'Critical-value calls: the open ones (calling or escalated) by default, oldest first, a keyset page at a time; no values',
      tag: TAG,
      roles: LAB,
      query: criticalCallListQuery,
      response: criticalCallListAnswer,
      handler: async ({ query, ctx }) => {
        ctx.body = await listCriticalCalls(db, query);
      },
    }),
    route<Params>({
      method: 'get',
      path: '/samples/:accession/analyses/:test/critical-call',
      summary: "A critical result's call: the value to read back, the ordering provider, the state and every attempt (an access event)",
      tag: TAG,
      roles: LAB,
      params: analysisParams,
      response: criticalCallAnswer,
      problems: [409, 422],
      handler: async ({ params, actor, ctx }) => {
        const view = await criticalCallView(db, params.accession, params.test);
        await phi.read(ctx, actor, { kind: 'critical_call', patientIds: [], recordIds: [view.workflowId] });
        ctx.body = view;
      },
    }),
    route<Params, Record<string, never>, AttemptBody>({
      method: 'post',
      path: '/samples/:accession/analyses/:test/critical-call/attempts',
      summary:
        'Log a call attempt (write-once): whom, the outcome, and with CONFIRMED the value as read back; a mismatch is recorded as not confirmed. 422 result-not-critical for a result without a call',
      tag: TAG,
      roles: LAB,
      params: analysisParams,
      body: attemptBody,
      response: attemptResultAnswer,
      problems: [...new Set([409, 422, ...Object.values(FAILURE_HTTP_STATUS)])],
      handler: async ({ params, body, actor, ctx }) => {
        const answer = await logAttempt(deps, params.accession, params.test, body, actor);
        // The answer carries the read-back as recorded (also another person's, for a duplicate request ID).
        await phi.read(ctx, actor, { kind: 'critical_call', patientIds: [], recordIds: [answer.call.workflowId] });
        ctx.body = answer;
      },
    }),
  ];
}
