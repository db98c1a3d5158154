import { domainEventJsonSchemas } from '../../common/domain-events';
import { listDomainEvents } from '../../db/domain-events';
import type { ApiDeps } from '../deps';
import { route, type RouteSpec } from '../route';
import * as R from '../schemas/webhooks';
import { eventsQuery } from '../schemas/webhooks';

const tag = 'events';
const READERS = ['admin', 'it_operator', 'qa_manager'] as const;

/** The domain event history, in commit order, and the schema of each event type. */
export function eventRoutes({ db }: ApiDeps): RouteSpec[] {
  return [
    route({
      method: 'get',
      path: '/events',
      response: R.eventPage,
      summary: 'Domain events after a sequence number (`after`), of some types (`type=a,b`); `next` is the `after` of the next page',
      tag,
      roles: READERS,
      query: eventsQuery,
      handler: async ({ query, ctx }) => {
        const items = await listDomainEvents(db, { types: query.type, after: query.after, limit: query.limit });
        ctx.body = { items, next: items.length === query.limit ? items[items.length - 1].seq : null };
      },
    }),
    route({
      method: 'get',
      path: '/events/schemas',
      response: R.eventSchemas,
      summary: 'The JSON Schema and version of every domain event type',
      tag,
      roles: READERS,
      handler: async ({ ctx }) => {
        ctx.body = domainEventJsonSchemas();
      },
    }),
  ];
}
