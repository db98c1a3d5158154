import { ApplicationFailure } from '@temporalio/common';
import type { Knex } from 'knex';
import { Webhook } from 'standardwebhooks';
import { durationMs } from '../common/durations';
import { WebhookFailure } from '../common/webhook-delivery';
import { appendAudit } from '../db/audit';
import { toDomainEvent, type DomainEvent } from '../db/domain-events';
import { queueNotifications } from '../db/notifications';
import { resolveRecipients } from '../db/recipients';
import { refuseWebhookUrl } from '../platform/webhook-url-guard';
import type { ActivityDeps } from './deps';

const SYSTEM_ACTOR = 'system:webhook-delivery';

/** The body every receiver gets: the Standard Webhooks shape, type, timestamp and data, with the event's ID and schema version. */
export function webhookBody(e: DomainEvent): string {
  return JSON.stringify({ id: e.id, type: e.type, version: e.version, timestamp: e.occurredAt, data: e.data });
}

/** Signs with the current secret and, during a rotation's overlap, the previous one too (space-separated, as the spec allows). */
export function signWebhook(secrets: string[], msgId: string, at: Date, body: string): string {
  return secrets.map((s) => new Webhook(s).sign(msgId, at, body)).join(' ');
}

export function webhookDeliveryActivities({ db, publicUrl, mailDomain, webhooks }: ActivityDeps) {
  const guard = { allowedHosts: webhooks?.allowedHosts ?? [], ownOrigins: [publicUrl, ...(webhooks?.ownOrigins ?? [])] };
  const disableAfterMs = durationMs(webhooks?.disableAfter ?? '5d');

  const notEnabled = (why: string) => ApplicationFailure.create({ type: WebhookFailure.NotEnabled, message: why, nonRetryable: true });

  async function recordAttempt(
    trx: Knex.Transaction,
    subscriptionId: string,
    seq: number,
    state: string,
    status: number | null,
    error: string | null,
  ) {
    await trx('webhook_deliveries')
      .insert({ subscription_id: subscriptionId, event_seq: seq, state, attempts: 1, last_status: status, last_error: error })
      .onConflict(['subscription_id', 'event_seq'])
      .merge({
        state,
        attempts: trx.raw('webhook_deliveries.attempts + 1'),
        last_status: status,
        last_error: error,
        updated_at: trx.fn.now(),
      });
  }

  /** Turns a subscription off and tells the admins, in one transaction; the run then ends. */
  async function disable(trx: Knex.Transaction, sub: { id: string; url: string }, reason: string) {
    await trx('webhook_subscriptions')
      .where({ id: sub.id })
      .update({ state: 'disabled', disabled_reason: reason, updated_at: trx.fn.now() });
    await appendAudit(trx, {
      actor: SYSTEM_ACTOR,
      action: 'webhook.subscription_disabled',
      entityType: 'webhook_subscription',
      entityId: sub.id,
      details: { reason },
    });
    const admins = await resolveRecipients(trx, [{ kind: 'role', role: 'admin' }]);
    await queueNotifications(
      trx,
      admins,
      {
        idempotencyKey: `webhook-disabled:${sub.id}:${Date.now()}`,
        kind: 'webhook.subscription_disabled',
        title: 'A webhook subscription was disabled',
        body: `Webhook subscription ${sub.id} (${sub.url}) was disabled: ${reason}. Fix the receiver, then enable it with PATCH /api/v1/webhook-subscriptions/${sub.id}.`,
        link: `${publicUrl}/api/v1/webhook-subscriptions/${sub.id}`,
        email: false,
      },
      mailDomain,
    );
  }

  return {
    /** What the run sends next: requested redeliveries first, then events after the cursor, of the subscribed types. */
    async nextWebhookBatch(p: { subscriptionId: string; limit: number }): Promise<{ state: string; seqs: number[] }> {
      const sub = await db('webhook_subscriptions').where({ id: p.subscriptionId }).first();
      if (!sub || sub.state !== 'enabled') return { state: sub?.state ?? 'deleted', seqs: [] };
      const redeliver = await db('webhook_deliveries')
        .where({ subscription_id: p.subscriptionId, state: 'redeliver' })
        .orderBy('event_seq')
        .limit(p.limit)
        .pluck('event_seq');
      const fresh = await db('domain_events')
        .where('seq', '>', sub.delivered_through)
        .whereIn('type', sub.event_types)
        .orderBy('seq')
        .limit(p.limit - redeliver.length)
        .pluck('seq');
      return { state: 'enabled', seqs: [...redeliver, ...fresh].map(Number) };
    },

    /**
     * One attempt at one event. A 2xx records the delivery and moves the cursor; anything else records the attempt
     * and throws so that Temporal retries with backoff, unless the subscription has now failed for longer than the
     * failure period (or the receiver answered 410 Gone), which disables it.
     */
    async deliverWebhookEvent(p: { subscriptionId: string; seq: number }): Promise<{ status: number }> {
      const sub = await db('webhook_subscriptions').where({ id: p.subscriptionId }).first();
      if (!sub || sub.state !== 'enabled') throw notEnabled(`subscription ${p.subscriptionId} is ${sub?.state ?? 'deleted'}`);
      const row = await db('domain_events').where({ seq: p.seq }).first();
      const event = toDomainEvent(row);
      const body = webhookBody(event);
      const secrets = [
        sub.secret,
        ...(sub.previous_secret && new Date(sub.previous_secret_expires_at) > new Date() ? [sub.previous_secret] : []),
      ];
      const at = new Date();
      let status: number | null = null;
      let error: string | null = null;
      const refused = await refuseWebhookUrl(sub.url, guard);
      if (refused) {
        error = `refused (${refused.rule}): ${refused.detail}`;
      } else {
        try {
          const res = await fetch(sub.url, {
            method: 'POST',
            redirect: 'manual',
            signal: AbortSignal.timeout(Math.max(1000, durationMs(webhooks?.requestTimeout ?? '15s'))),
            headers: {
              'content-type': 'application/json',
              'user-agent': 'labflow-webhooks/1',
              'webhook-id': event.id,
              'webhook-timestamp': String(Math.floor(at.getTime() / 1000)),
              'webhook-signature': signWebhook(secrets, event.id, at, body),
            },
            body,
          });
          status = res.status;
          await res.body?.cancel();
          if (status >= 300)
            error = status >= 300 && status < 400 ? `redirected (${status}); redirects are not followed` : `answered ${status}`;
        } catch (err) {
          error = err instanceof Error && err.name === 'TimeoutError' ? 'timed out' : 'could not connect';
        }
      }
      return db
        .transaction(async (trx) => {
          const current = await trx('webhook_subscriptions').where({ id: p.subscriptionId }).forUpdate().first();
          if (current.state !== 'enabled') throw notEnabled(`subscription ${p.subscriptionId} is ${current.state}`);
          if (!error) {
            await recordAttempt(trx, p.subscriptionId, p.seq, 'delivered', status, null);
            await trx('webhook_subscriptions')
              .where({ id: p.subscriptionId })
              .update({ failing_since: null, delivered_through: trx.raw('greatest(delivered_through, ?)', [p.seq]) });
            return { status: status! };
          }
          await recordAttempt(trx, p.subscriptionId, p.seq, 'failing', status, error);
          const failingSince = current.failing_since ? new Date(current.failing_since) : at;
          if (!current.failing_since) await trx('webhook_subscriptions').where({ id: p.subscriptionId }).update({ failing_since: at });
          const gone = status === 410;
          if (gone || at.getTime() - failingSince.getTime() >= disableAfterMs) {
            await disable(
              trx,
              current,
              gone ? 'the receiver answered 410 Gone' : `every delivery failed since ${failingSince.toISOString()}`,
            );
            return { status: -1 };
          }
          return { status: -2, error };
        })
        .then((r) => {
          if (r.status === -1) throw notEnabled(`subscription ${p.subscriptionId} was disabled`);
          if (r.status === -2) throw ApplicationFailure.retryable(`delivery of event ${p.seq} failed: ${error}`, 'WebhookDeliveryFailed');
          return { status: r.status };
        });
    },

    /** The event's retries are spent: it goes to the dead-letter list, and the cursor moves past it. */
    async deadLetterWebhookEvent(p: { subscriptionId: string; seq: number }): Promise<void> {
      await db.transaction(async (trx) => {
        await trx('webhook_deliveries')
          .insert({ subscription_id: p.subscriptionId, event_seq: p.seq, state: 'dead', attempts: 0 })
          .onConflict(['subscription_id', 'event_seq'])
          .merge({ state: 'dead', updated_at: trx.fn.now() });
        await trx('webhook_subscriptions')
          .where({ id: p.subscriptionId })
          .update({ delivered_through: trx.raw('greatest(delivered_through, ?)', [p.seq]) });
      });
    },
  };
}
