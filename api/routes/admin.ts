import { z } from 'zod';
import { verifyAuditChain } from '../../db/audit';
import { createUser } from '../../db/identity';
import { usernameTaken } from '../../db/users';
import type { ApiDeps } from '../deps';
import { problems } from '../problem';
import { route, type RouteSpec } from '../route';
import { role, text, username } from '../schemas/common';

const newUserBody = z.strictObject({
  username,
  printedName: text(120),
  email: z.email(),
  roles: z.array(role).min(1).max(10),
  password: z.string().min(12, 'at least 12 characters').max(200).optional(),
});

export function adminRoutes({ db, auditChain }: ApiDeps): RouteSpec[] {
  return [
    route({
      method: 'get',
      path: '/me',
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
      summary: 'Create a user; the answer carries their API key, shown this once',
      tag: 'identity',
      roles: ['admin'],
      body: newUserBody,
      handler: async ({ body, actor, ctx }) => {
        if (await usernameTaken(db, body.username)) {
          throw problems.conflict('user-exists', `user ${body.username} already exists`);
        }
        const { user, apiKey } = await createUser(db, body, actor.username);
        ctx.status = 201;
        ctx.body = { ...user, apiKey };
      },
    }),
    route({
      method: 'get',
      path: '/admin/audit/verify',
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
