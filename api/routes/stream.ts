import type { ApiDeps } from '../deps';
import { problems } from '../problem';
import { parseOrProblem, route, type RouteSpec } from '../route';
import * as R from '../schemas/responses';
import { lastEventId, streamQuery } from '../schemas/webhooks';

/** Live updates: the domain events the caller may see, as Server-Sent Events (docs/events.md). */
export function streamRoutes({ streams }: ApiDeps): RouteSpec[] {
  return [
    route({
      method: 'get',
      path: '/stream',
      response: R.plainText,
      responseType: 'text/event-stream',
      problems: [429, 503],
      summary:
        'Server-Sent Events: each domain event the caller may see (their tasks, records they can read) as it commits, ' +
        '`id` its seq; `Last-Event-ID` (or `after`) replays what came after it first; `type=a,b` keeps some types; ' +
        'a comment line every STREAM_HEARTBEAT_INTERVAL; a last `stream-ended` event says why the server ended it',
      tag: 'events',
      roles: 'any',
      query: streamQuery,
      handler: async ({ query, actor, ctx }) => {
        if (!streams) throw problems.unavailable('live updates are not available on this API process');
        const header = ctx.get('last-event-id');
        const after = header ? parseOrProblem(lastEventId, header, 'header.last-event-id') : query.after;
        await streams.open(ctx, actor, { after, types: query.type });
      },
    }),
  ];
}
