import type { Context } from 'koa';
import { durationMs } from '../../common/durations';
import { DEFAULT_WEBHOOK_SETTINGS } from '../../common/webhook-delivery';
import {
  createWebhookSubscription,
  deleteWebhookSubscription,
  findWebhookSubscription,
  listDeadLetters,
  listWebhookSubscriptions,
  requestRedelivery,
  rotateWebhookSecret,
  updateWebhookSubscription,
} from '../../db/webhook-subscriptions';
import { refuseWebhookUrl } from '../../platform/webhook-url-guard';
import type { ApiDeps } from '../deps';
import { problems } from '../problem';
import { route, type RouteSpec } from '../route';
import * as R from '../schemas/webhooks';
import { createSubscriptionBody, redeliverBody, subscriptionIdParams, updateSubscriptionBody } from '../schemas/webhooks';
import { wakeWebhookDelivery } from '../temporal/webhook-delivery';

const tag = 'webhooks';
const ADMIN = ['admin'] as const;

/** Outbound webhook subscriptions (admin): Standard Webhooks, one ordered delivery run per subscription. */
export function webhookSubscriptionRoutes(deps: ApiDeps): RouteSpec[] {
  const { db } = deps;
  // Read per request: the OpenAPI document is built from these specs without a configuration.
  const settings = () => deps.config.webhooks ?? DEFAULT_WEBHOOK_SETTINGS;

  /** Beside PUBLIC_URL, the address this request reached labflow at: the API itself is no receiver either. */
  const ownOrigins = (ctx: Context) => {
    const { localAddress, localPort } = ctx.req.socket;
    const local = localAddress ? [`http://${localAddress.includes(':') ? `[${localAddress}]` : localAddress}:${localPort}`] : [];
    return [...(deps.config.publicUrl ? [deps.config.publicUrl] : []), ...local, `${ctx.protocol}://${ctx.host}`];
  };
  async function requireSafeUrl(url: string, ctx: Context) {
    const refused = await refuseWebhookUrl(url, { allowedHosts: settings().allowedHosts, ownOrigins: ownOrigins(ctx) });
    if (refused) {
      throw problems.unprocessable(`webhook-url-${refused.rule}`, `the URL is refused by the ${refused.rule} rule: ${refused.detail}`, {
        rule: refused.rule,
        errors: [{ field: 'body.url', detail: refused.detail }],
      });
    }
  }
  const found = async (id: string) => {
    const sub = await findWebhookSubscription(db, id);
    if (!sub) throw problems.notFound(`webhook subscription ${id}`);
    return sub;
  };

  return [
    route({
      method: 'post',
      response: { 201: R.createdSubscription },
      problems: [422],
      path: '/webhook-subscriptions',
      summary: 'Subscribe a URL to event types; the answer holds the signing secret, shown this once',
      tag,
      roles: ADMIN,
      body: createSubscriptionBody,
      handler: async ({ body, actor, ctx }) => {
        await requireSafeUrl(body.url, ctx);
        const { subscription, secret } = await createWebhookSubscription(db, actor, body);
        await wakeWebhookDelivery(deps, subscription.id);
        ctx.status = 201;
        ctx.set('Location', `/api/v1/webhook-subscriptions/${subscription.id}`);
        ctx.body = { ...subscription, secret };
      },
    }),
    route({
      method: 'get',
      response: R.subscriptionList,
      path: '/webhook-subscriptions',
      summary: 'Every webhook subscription (secrets are never shown again)',
      tag,
      roles: ADMIN,
      handler: async ({ ctx }) => {
        ctx.body = { items: await listWebhookSubscriptions(db) };
      },
    }),
    route({
      method: 'get',
      response: R.subscriptionAnswer,
      path: '/webhook-subscriptions/:id',
      summary: 'One webhook subscription: state, cursor, failure record',
      tag,
      roles: ADMIN,
      params: subscriptionIdParams,
      handler: async ({ params, ctx }) => {
        ctx.body = await found(params.id);
      },
    }),
    route({
      method: 'patch',
      response: R.subscriptionAnswer,
      problems: [422],
      path: '/webhook-subscriptions/:id',
      summary: 'Change URL, event types or description, or enable/disable (enabling resumes from where delivery stopped)',
      tag,
      roles: ADMIN,
      params: subscriptionIdParams,
      body: updateSubscriptionBody,
      handler: async ({ params, body, actor, ctx }) => {
        if (body.url !== undefined) await requireSafeUrl(body.url, ctx);
        const sub = await updateWebhookSubscription(db, actor, params.id, body);
        if (!sub) throw problems.notFound(`webhook subscription ${params.id}`);
        await wakeWebhookDelivery(deps, sub.id);
        ctx.body = sub;
      },
    }),
    route({
      method: 'delete',
      response: { 204: null },
      path: '/webhook-subscriptions/:id',
      summary: 'Delete a subscription: nothing more is sent, its secrets are forgotten, its delivery records stay',
      tag,
      roles: ADMIN,
      params: subscriptionIdParams,
      handler: async ({ params, actor, ctx }) => {
        if (!(await deleteWebhookSubscription(db, actor, params.id))) throw problems.notFound(`webhook subscription ${params.id}`);
        await wakeWebhookDelivery(deps, params.id);
        ctx.status = 204;
      },
    }),
    route({
      method: 'post',
      response: R.rotatedSecret,
      path: '/webhook-subscriptions/:id/rotate-secret',
      summary: 'A new signing secret (shown once); the previous one signs too until WEBHOOK_SECRET_OVERLAP has passed',
      tag,
      roles: ADMIN,
      params: subscriptionIdParams,
      handler: async ({ params, actor, ctx }) => {
        const rotated = await rotateWebhookSecret(db, actor, params.id, durationMs(settings().secretOverlap));
        if (!rotated) throw problems.notFound(`webhook subscription ${params.id}`);
        ctx.body = rotated;
      },
    }),
    route({
      method: 'get',
      response: R.deadLetterList,
      path: '/webhook-subscriptions/:id/dead-letters',
      summary: 'Events whose retries were spent without a 2xx from the receiver',
      tag,
      roles: ADMIN,
      params: subscriptionIdParams,
      handler: async ({ params, ctx }) => {
        await found(params.id);
        ctx.body = { items: await listDeadLetters(db, params.id) };
      },
    }),
    route({
      method: 'post',
      response: { 202: R.redeliveryAnswer },
      problems: [409],
      path: '/webhook-subscriptions/:id/redeliver',
      summary: 'Send dead letters again (all, or the named events), in event order, before anything newer',
      tag,
      roles: ADMIN,
      params: subscriptionIdParams,
      body: redeliverBody,
      handler: async ({ params, body, actor, ctx }) => {
        const sub = await found(params.id);
        if (sub.state !== 'enabled') throw problems.conflict('subscription-disabled', 'enable the subscription before redelivering');
        const requested = await requestRedelivery(db, actor, params.id, body.eventIds);
        await wakeWebhookDelivery(deps, params.id);
        ctx.status = 202;
        ctx.body = { requested };
      },
    }),
  ];
}
