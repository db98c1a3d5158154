import { z } from 'zod';
import { listNotifications, markNotificationRead } from '../../db/notifications';
import { listTasks } from '../../db/tasks';
import type { ApiDeps } from '../deps';
import { problems } from '../problem';
import { route, type RouteSpec } from '../route';
import * as R from '../schemas/responses';
import { flagParam, pagination } from '../schemas/common';

const tasksQuery = pagination.extend({
  mine: flagParam.optional(),
  state: z.enum(['open', 'done', 'reassigned', 'cancelled']).optional(),
  entityType: z.string().max(40).optional(),
});
const notificationsQuery = pagination.extend({ unread: flagParam.optional() });

/** The task inbox and notifications every process writes to. */
export function inboxRoutes({ db }: ApiDeps): RouteSpec[] {
  return [
    route({
      method: 'get',
      path: '/tasks',
      response: R.page(R.task),
      summary: 'Tasks waiting on people; mine=1 keeps those assigned to me or to one of my roles',
      tag: 'inbox',
      roles: 'any',
      query: tasksQuery,
      handler: async ({ query, actor, ctx }) => {
        const items = await listTasks(db, {
          ...query,
          userId: query.mine ? actor.userId : undefined,
          roles: query.mine ? actor.roles : undefined,
        });
        ctx.body = { limit: query.limit, offset: query.offset, items };
      },
    }),
    route({
      method: 'get',
      path: '/notifications',
      response: R.page(R.notification),
      summary: 'My notifications, newest first',
      tag: 'inbox',
      roles: 'any',
      query: notificationsQuery,
      handler: async ({ query, actor, ctx }) => {
        ctx.body = {
          limit: query.limit,
          offset: query.offset,
          items: await listNotifications(db, actor.userId, query.unread ?? false, query.limit, query.offset),
        };
      },
    }),
    route({
      method: 'post',
      path: '/notifications/:id/read',
      response: { 204: null },
      summary: 'Mark one of my notifications read',
      tag: 'inbox',
      roles: 'any',
      params: z.object({ id: z.uuid() }),
      handler: async ({ params, actor, ctx }) => {
        if (!(await markNotificationRead(db, actor.userId, params.id))) throw problems.notFound(`notification ${params.id}`);
        ctx.status = 204;
      },
    }),
  ];
}
