import { listUsers, readUser } from '../../db/user-lifecycle';
import { updateUser, usernameTaken } from '../../db/users';
import { createUserWithEnrolment } from '../credentials/enrolment';
import type { ApiDeps } from '../deps';
import { problems } from '../problem';
import { route, type RouteSpec } from '../route';
import * as R from '../schemas/responses';
import { lifecycleBody, listUsersQuery, newUserBody, rolesBody, userEditBody, userParams } from '../schemas/users';
import { signedUserChange } from '../services/user-lifecycle';

const tag = 'identity';

/** Who may use labflow: the caller's own identity, and the lifecycle of users (admin). */
export function userRoutes(deps: ApiDeps): RouteSpec[] {
  const { db } = deps;
  const known = async (username: string) => {
    if (!(await readUser(db, username))) throw problems.notFound(`user ${username}`);
  };
  const signed = (kind: 'roles' | 'deactivate' | 'reactivate') => async ({ params, body, actor, ctx }: Parameters<RouteSpec['handler']>[0]) => {
    const { username } = params as { username: string };
    await known(username);
    const { user, changes, revokedKeys, closedSessions, handedOver, training } = await signedUserChange(
      deps,
      actor,
      username,
      kind,
      body as Parameters<typeof signedUserChange>[4],
    );
    ctx.set('ETag', `"${user.version}"`);
    ctx.body = { ...user, changes, ...(kind === 'deactivate' ? { revokedKeys, closedSessions, handedOver } : {}), ...(training ? { training } : {}) };
  };

  return [
    route({
      method: 'get',
      path: '/me',
      response: R.actorAnswer,
      summary: 'Who the API key belongs to, with roles',
      tag,
      roles: 'any',
      handler: async ({ actor, ctx }) => {
        ctx.body = actor;
      },
    }),
    route({
      method: 'get',
      path: '/users',
      response: R.userList,
      summary: 'Users by username, filtered by role and active flag, paged (admin)',
      tag,
      roles: ['admin'],
      query: listUsersQuery,
      handler: async ({ query, ctx }) => {
        const { users, total } = await listUsers(db, query);
        ctx.body = { items: users, total, limit: query.limit, offset: query.offset };
      },
    }),
    route({
      method: 'get',
      path: '/users/:username',
      response: R.userView,
      summary: 'One user, with the version a signed change names to be refused when stale (admin)',
      tag,
      roles: ['admin'],
      params: userParams,
      handler: async ({ params, ctx }) => {
        const user = await readUser(db, params.username);
        if (!user) throw problems.notFound(`user ${params.username}`);
        ctx.set('ETag', `"${user.version}"`);
        ctx.body = user;
      },
    }),
    route({
      method: 'post',
      path: '/users',
      response: { 201: R.createdUser }, problems: [409],
      summary:
        'Create a user; the answer carries their API key, shown this once. They set their own signing password with the enrolment token emailed to them',
      tag,
      roles: ['admin'],
      body: newUserBody,
      handler: async ({ body, actor, ctx }) => {
        if (await usernameTaken(db, body.username)) {
          throw problems.conflict('user-exists', `user ${body.username} already exists`);
        }
        const { user, apiKey, enrolmentExpiresAt } = await createUserWithEnrolment(deps, actor, body);
        ctx.status = 201;
        const { id, username: name, printed_name: printedName, email, roles, active } = user;
        ctx.body = { id, username: name, printedName, email, roles, active, apiKey, enrolment: { emailedTo: email, expiresAt: enrolmentExpiresAt.toISOString() } };
      },
    }),
    route({
      method: 'patch',
      path: '/users/:username',
      response: R.editedUser, problems: [409, 422],
      summary: "Change a user's printed name or email (admin); the trail records each old and new value",
      tag,
      roles: ['admin'],
      params: userParams,
      body: userEditBody,
      handler: async ({ params, body, actor, ctx }) => {
        if (body.roles !== undefined || body.active !== undefined) {
          const route = body.roles !== undefined ? `PUT /users/${params.username}/roles` : `POST /users/${params.username}/deactivate or /reactivate`;
          throw problems.unprocessable('signed-change-required', `rule signed-change-required: roles and the active flag change only by ${route}, signed`);
        }
        const updated = await updateUser(db, actor, params.username, body);
        if (!updated) throw problems.notFound(`user ${params.username}`);
        const { id, username: name, printed_name: printedName, email, roles, active } = updated.user;
        ctx.body = { id, username: name, printedName, email, roles, active, changes: updated.changes };
      },
    }),
    route({
      method: 'put',
      path: '/users/:username/roles',
      response: R.signedUserChange, problems: [409, 422, 423],
      summary: "Replace a user's roles, signed by the admin (password); audited old → new, QA alerted",
      tag,
      roles: ['admin'],
      params: userParams,
      body: rolesBody,
      handler: signed('roles'),
    }),
    route({
      method: 'post',
      path: '/users/:username/deactivate',
      response: R.signedUserChange, problems: [409, 422, 423],
      summary:
        "Deactivate a user, signed by the admin: keys revoked and codec sessions closed at once, open work handed over in every process, QA alerted",
      tag,
      roles: ['admin'],
      params: userParams,
      body: lifecycleBody,
      handler: signed('deactivate'),
    }),
    route({
      method: 'post',
      path: '/users/:username/reactivate',
      response: R.signedUserChange, problems: [409, 422, 423],
      summary: 'Reactivate a user, signed by the admin; their old keys stay revoked; QA alerted',
      tag,
      roles: ['admin'],
      params: userParams,
      body: lifecycleBody,
      handler: signed('reactivate'),
    }),
  ];
}
