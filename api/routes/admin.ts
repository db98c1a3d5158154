import { z } from 'zod';
import { verifyAuditChain } from '../../db/audit';
import { updateUser, usernameTaken } from '../../db/users';
import { createUserWithEnrolment } from '../credentials/enrolment';
import type { ApiDeps } from '../deps';
import { problems } from '../problem';
import { route, type RouteSpec } from '../route';
import * as R from '../schemas/responses';
import { role, text, username } from '../schemas/common';

const newUserBody = z.strictObject({
  username,
  printedName: text(120),
  email: z.email(),
  roles: z.array(role).min(1).max(10),
});

const userParams = z.object({ username });
const userEditBody = z
  .strictObject({
    printedName: text(120).optional(),
    email: z.email().optional(),
    roles: z.array(role).min(1).max(10).optional(),
    active: z.boolean().optional(),
  })
  .refine((body) => Object.values(body).some((v) => v !== undefined), { message: 'send at least one of printedName, email, roles, active' });

export function adminRoutes(deps: ApiDeps): RouteSpec[] {
  const { db, auditChain } = deps;
  return [
    route({
      method: 'get',
      path: '/me',
      response: R.actorAnswer,
      summary: 'Who the API key belongs to, with roles',
      tag: 'identity',
      roles: 'any',
      handler: async ({ actor, ctx }) => {
        ctx.body = actor;
      },
    }),
    route({
      method: 'post',
      path: '/users',
      response: { 201: R.createdUser },
      summary:
        'Create a user; the answer carries their API key, shown this once. They set their own signing password with the enrolment token emailed to them',
      tag: 'identity',
      roles: ['admin'],
      body: newUserBody,
      handler: async ({ body, actor, ctx }) => {
        if (await usernameTaken(db, body.username)) {
          throw problems.conflict('user-exists', `user ${body.username} already exists`);
        }
        const { user, apiKey, enrolmentExpiresAt } = await createUserWithEnrolment(deps, actor, body);
        ctx.status = 201;
        ctx.body = { ...user, apiKey, enrolment: { emailedTo: user.email, expiresAt: enrolmentExpiresAt.toISOString() } };
      },
    }),
    route({
      method: 'patch',
      path: '/users/:username',
      response: R.editedUser, problems: [409],
      summary: "Change a user's printed name, email, roles or active flag (admin); the trail records each old and new value",
      tag: 'identity',
      roles: ['admin'],
      params: userParams,
      body: userEditBody,
      handler: async ({ params, body, actor, ctx }) => {
        if (body.active === false && params.username === actor.username) {
          throw problems.conflict('self-deactivation', 'an admin cannot deactivate their own account');
        }
        const updated = await updateUser(db, actor, params.username, body);
        if (!updated) throw problems.notFound(`user ${params.username}`);
        const { id, username: name, printed_name: printedName, email, roles, active } = updated.user;
        ctx.body = { id, username: name, printedName, email, roles, active, changes: updated.changes };
      },
    }),
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
