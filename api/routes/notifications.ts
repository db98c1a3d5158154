import { readNotificationPreferences, saveNotificationPreferences } from '../../db/notification-preferences';
import { readNotice } from '../../db/notices';
import { FAILURE_HTTP_STATUS } from '../../common/failures';
import type { ApiDeps } from '../deps';
import { problems } from '../problem';
import { route, type RouteSpec } from '../route';
import * as S from '../schemas/notifications';
import { acknowledgeNotice } from '../temporal/notices';

const tag = 'notifications';
export const DEFAULT_SLACK_URL_PREFIXES = ['https://hooks.slack.com/services/'];

/** A person's notification channels (theirs to set, an admin's to read) and the urgent notices they acknowledge. */
export function notificationRoutes(deps: ApiDeps): RouteSpec[] {
  const { db } = deps;
  // Read per request: the OpenAPI document is built from these specs without a configuration.
  const slackPrefixes = () => deps.config.notifications?.slackUrlPrefixes ?? DEFAULT_SLACK_URL_PREFIXES;

  return [
    route({
      method: 'get',
      path: '/me/notification-preferences',
      response: S.preferences,
      summary: 'My notification channels (for normal notices), whether a Slack webhook is set, and my SMS number',
      tag,
      roles: 'any',
      handler: async ({ actor, ctx }) => {
        ctx.body = await readNotificationPreferences(db, actor.userId);
      },
    }),
    route({
      method: 'put',
      path: '/me/notification-preferences',
      response: S.preferences,
      problems: [422],
      summary: 'Set my notification channels, Slack incoming-webhook URL and SMS number (only the fields given)',
      tag,
      roles: 'any',
      body: S.preferencesUpdateBody,
      handler: async ({ body, actor, ctx }) => {
        if (body.slackWebhookUrl && !slackPrefixes().some((p) => body.slackWebhookUrl!.startsWith(p))) {
          throw problems.unprocessable('slack-webhook-url-refused', `a Slack webhook URL must begin with one of: ${slackPrefixes().join(', ')}`, {
            errors: [{ field: 'body.slackWebhookUrl', detail: 'not a Slack incoming-webhook URL this lab allows' }],
          });
        }
        const outcome = await saveNotificationPreferences(db, actor.userId, body);
        if ('refused' in outcome) {
          throw problems.unprocessable('channel-unreachable', outcome.refused.detail, { errors: [outcome.refused] });
        }
        ctx.body = outcome.saved;
      },
    }),
    route({
      method: 'get',
      path: '/users/:userId/notification-preferences',
      response: S.preferences,
      summary: "A person's notification channels (admin)",
      tag,
      roles: ['admin'],
      params: S.userIdParams,
      handler: async ({ params, ctx }) => {
        const prefs = await readNotificationPreferences(db, params.userId);
        if (!prefs) throw problems.notFound(`user ${params.userId}`);
        ctx.body = prefs;
      },
    }),
    route({
      method: 'get',
      path: '/notices/:id',
      response: S.notice,
      summary: 'A notice, its escalation step and every delivery of it (its recipients, admins)',
      tag,
      roles: 'any',
      params: S.noticeIdParams,
      handler: async ({ params, actor, ctx }) => {
        const notice = await readNotice(db, params.id);
        const mine = notice?.deliveries.some((d) => d.userId === actor.userId);
        if (!notice || !(mine || actor.roles.includes('admin'))) throw problems.notFound(`notice ${params.id}`);
        ctx.body = notice;
      },
    }),
    route({
      method: 'post',
      path: '/notices/:id/acknowledge',
      response: S.acknowledged,
      problems: [...new Set(Object.values(FAILURE_HTTP_STATUS))],
      summary: 'Acknowledge an urgent notice sent to me: its escalation stops',
      tag,
      roles: 'any',
      params: S.noticeIdParams,
      handler: async ({ params, actor, ctx }) => {
        const notice = await readNotice(db, params.id);
        if (!notice || !notice.deliveries.some((d) => d.userId === actor.userId)) throw problems.notFound(`notice ${params.id}`);
        if (notice.priority !== 'urgent') throw problems.conflict('not-urgent', 'only urgent notices are acknowledged');
        if (notice.state !== 'open') throw problems.conflict('notice-closed', `the notice is ${notice.state}`);
        const state = await acknowledgeNotice(deps, actor, params.id);
        ctx.body = { noticeId: params.id, acknowledged: state.acknowledged, step: state.step };
      },
    }),
  ];
}
