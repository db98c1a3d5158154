import { verifyAuditChain } from '../../db/audit';
import type { ApiDeps } from '../deps';
import { route, type RouteSpec } from '../route';
import * as R from '../schemas/responses';

/** Operations only admins and QA run: the audit trail's verification. The user routes live in users.ts. */
export function adminRoutes({ db, auditChain }: ApiDeps): RouteSpec[] {
  return [
    route({
      method: 'get',
      path: '/admin/audit/verify',
      response: R.auditVerdict,
      summary:
        "Recompute the audit trail's hash chain and keyed links, check it against the newest checkpoint, and name the first broken link",
      tag: 'operations',
      roles: ['admin', 'qa_manager'],
      handler: async ({ ctx }) => {
        // A broken chain is the answer asked for, not an error: 200 with the verdict.
        ctx.body = await verifyAuditChain(db, { chain: auditChain });
      },
    }),
  ];
}
