import { Context } from '@temporalio/activity';
import { ApplicationFailure } from '@temporalio/common';
import type { Knex } from 'knex';
import { Webhook } from 'standardwebhooks';
import { durationMs } from '../common/durations';
import { WebhookFailure, type WebhookBatchOutcome } from '../common/webhook-delivery';
import { appendAudit } from '../db/audit';
import { toDomainEvent, type DomainEvent } from '../db/domain-events';
import { queueNotifications } from '../db/notifications';
import { resolveRecipients } from '../db/recipients';
import { refuseWebhookUrl, type UrlRefusal } from '../platform/webhook-url-guard';
import type { ActivityDeps } from './deps';

const SYSTEM_ACTOR = 'system:webhook-delivery';
/** A batch activity takes no new event after this long, so that it stays well inside its timeout. */
const BATCH_BUDGET_MS = 10_000;
/** How long a batch activity that sent something waits for the subscription's next event before ending its turn. */
const LINGER_MS = 1000;

/** Aborted when the activity is cancelled (the worker shutting down); undefined outside an activity. */
function activityCancellation(): AbortSignal | undefined {
  try {
    return Context.current().cancellationSignal;
  } catch {
    return undefined;
  }
}

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

  /** Requested redeliveries first, then events after the cursor of the subscribed types, in seq order. */
  async function pendingSeqs(sub: { id: string; delivered_through: string | number; event_types: string[] }, limit: number) {
    const redeliver = await db('webhook_deliveries')
      .where({ subscription_id: sub.id, state: 'redeliver' })
      .orderBy('event_seq')
      .limit(limit)
      .pluck('event_seq');
    const fresh = await db('domain_events')
      .where('seq', '>', sub.delivered_through)
      .whereIn('type', sub.event_types)
      .orderBy('seq')
      .limit(limit - redeliver.length)
      .pluck('seq');
    return [...redeliver, ...fresh].map(Number);
  }

  type SubRow = { id: string; url: string; secret: string; previous_secret: string | null; previous_secret_expires_at: Date | string | null };

  /** POSTs one event, signed with the subscription's secrets; the outcome, nothing recorded yet. */
  async function post(sub: SubRow, event: DomainEvent, refused: UrlRefusal | null): Promise<{ at: Date; status: number | null; error: string | null }> {
    const at = new Date();
    if (refused) return { at, status: null, error: `refused (${refused.rule}): ${refused.detail}` };
    const body = webhookBody(event);
    const secrets = [
      sub.secret,
      ...(sub.previous_secret && sub.previous_secret_expires_at && new Date(sub.previous_secret_expires_at) > at ? [sub.previous_secret] : []),
    ];
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
      const status = res.status;
      await res.body?.cancel();
      if (status >= 300) return { at, status, error: status < 400 ? `redirected (${status}); redirects are not followed` : `answered ${status}` };
      return { at, status, error: null };
    } catch (err) {
      return { at, status: null, error: err instanceof Error && err.name === 'TimeoutError' ? 'timed out' : 'could not connect' };
    }
  }

  /**
   * Records delivered events in one transaction that first locks the subscription: each delivery row, the cursor
   * moved to the last of them and the failure period ended. Returns the subscription's state (they were sent
   * whatever it is now, so they are recorded whatever it is).
   */
  async function recordDelivered(subscriptionId: string, done: { seq: number; status: number }[]): Promise<string> {
    return db.transaction(async (trx) => {
      const current = await trx('webhook_subscriptions').where({ id: subscriptionId }).forNoKeyUpdate().first('state');
      if (!done.length) return current.state as string;
      await trx('webhook_deliveries')
        .insert(
          done.map((d) => ({ subscription_id: subscriptionId, event_seq: d.seq, state: 'delivered', attempts: 1, last_status: d.status, last_error: null })),
        )
        .onConflict(['subscription_id', 'event_seq'])
        .merge({
          state: 'delivered',
          attempts: trx.raw('webhook_deliveries.attempts + 1'),
          last_status: trx.raw('excluded.last_status'),
          last_error: null,
          updated_at: trx.fn.now(),
        });
      await trx('webhook_subscriptions')
        .where({ id: subscriptionId })
        .update({ failing_since: null, delivered_through: trx.raw('greatest(delivered_through, ?)', [Math.max(...done.map((d) => d.seq))]) });
      return current.state as string;
    });
  }

  /**
   * Records a failed attempt: it starts (or continues) the failure period and disables the subscription once that
   * has lasted WEBHOOK_DISABLE_AFTER, or at once on 410 Gone.
   */
  async function recordFailure(
    subscriptionId: string,
    seq: number,
    tried: { at: Date; status: number | null; error: string | null },
  ): Promise<'failed' | 'disabled'> {
    return db.transaction(async (trx) => {
      const current = await trx('webhook_subscriptions').where({ id: subscriptionId }).forNoKeyUpdate().first();
      if (current.state !== 'enabled') return 'disabled' as const;
      await recordAttempt(trx, subscriptionId, seq, 'failing', tried.status, tried.error);
      const failingSince = current.failing_since ? new Date(current.failing_since) : tried.at;
      if (!current.failing_since) await trx('webhook_subscriptions').where({ id: subscriptionId }).update({ failing_since: tried.at });
      const gone = tried.status === 410;
      if (gone || tried.at.getTime() - failingSince.getTime() >= disableAfterMs) {
        await disable(trx, current, gone ? 'the receiver answered 410 Gone' : `every delivery failed since ${failingSince.toISOString()}`);
        return 'disabled' as const;
      }
      return 'failed' as const;
    });
  }

  /**
   * One round of a batch: sends what is pending, in order, until the first failure or the time budget, and records
   * it. `outcome` ends the activity (the subscription is no longer enabled, or an event failed); `more` when the
   * budget or the read's limit stopped it with events left.
   */
  async function deliverPending(
    subscriptionId: string,
    limit: number,
    began: number,
  ): Promise<{ delivered: number; more: boolean; outcome?: Omit<WebhookBatchOutcome, 'delivered'> }> {
    const sub = await db('webhook_subscriptions').where({ id: subscriptionId }).first();
    if (!sub || sub.state !== 'enabled') return { delivered: 0, more: false, outcome: { state: sub?.state ?? 'deleted', more: false } };
    const seqs = await pendingSeqs(sub, limit);
    if (!seqs.length) return { delivered: 0, more: false };
    const rows = await db('domain_events').whereIn('seq', seqs).select('*');
    const bySeq = new Map<number, Record<string, unknown>>(rows.map((r: Record<string, unknown>) => [Number(r.seq), r]));
    // The URL rules are checked once a round, that is again before each batch of deliveries.
    const refused = await refuseWebhookUrl(sub.url, guard);
    const done: { seq: number; status: number }[] = [];
    let failed: { seq: number; tried: Awaited<ReturnType<typeof post>> } | null = null;
    let budgetSpent = false;
    for (const seq of seqs) {
      if (Date.now() - began > BATCH_BUDGET_MS) {
        budgetSpent = true;
        break;
      }
      const tried = await post(sub, toDomainEvent(bySeq.get(seq)!), refused);
      if (tried.error) {
        failed = { seq, tried };
        break;
      }
      done.push({ seq, status: tried.status! });
    }
    // What was delivered is recorded before the failure, so the cursor stands just before the failed event.
    const state = await recordDelivered(subscriptionId, done);
    if (state !== 'enabled') return { delivered: done.length, more: false, outcome: { state, more: false } };
    if (failed) {
      if ((await recordFailure(subscriptionId, failed.seq, failed.tried)) === 'disabled') {
        return { delivered: done.length, more: false, outcome: { state: 'disabled', more: false } };
      }
      return { delivered: done.length, more: true, outcome: { state: 'enabled', more: true, failedSeq: failed.seq } };
    }
    return { delivered: done.length, more: budgetSpent || seqs.length >= limit };
  }

  return {
    /** What the run sends next: requested redeliveries first, then events after the cursor, of the subscribed types. */
    async nextWebhookBatch(p: { subscriptionId: string; limit: number }): Promise<{ state: string; seqs: number[] }> {
      const sub = await db('webhook_subscriptions').where({ id: p.subscriptionId }).first();
      if (!sub || sub.state !== 'enabled') return { state: sub?.state ?? 'deleted', seqs: [] };
      return { state: 'enabled', seqs: await pendingSeqs(sub, p.limit) };
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
      const tried = await post(sub, toDomainEvent(row), await refuseWebhookUrl(sub.url, guard));
      if (!tried.error) {
        if ((await recordDelivered(p.subscriptionId, [{ seq: p.seq, status: tried.status! }])) !== 'enabled')
          throw notEnabled(`subscription ${p.subscriptionId} is no longer enabled`);
        return { status: tried.status! };
      }
      if ((await recordFailure(p.subscriptionId, p.seq, tried)) === 'disabled') throw notEnabled(`subscription ${p.subscriptionId} was disabled`);
      throw ApplicationFailure.retryable(`delivery of event ${p.seq} failed: ${tried.error}`, 'WebhookDeliveryFailed');
    },

    /**
     * The fast path: what the subscription has pending (requested redeliveries first, then the events after the
     * cursor, in seq order), sent one after the other with one read of the subscription and the events, stopping at
     * the first failure; the deliveries are recorded together in one transaction (a worker that dies before that
     * sends them again, with the same webhook-id, which receivers deduplicate on). That event is left to
     * deliverWebhookEvent, which Temporal retries with backoff; nothing after it is sent before it.
     *
     * Having sent something, the activity waits up to LINGER_MS for the next event's commit (the worker's bell) and
     * sends it at once, in the same turn: a busy subscription's events go out without a wake-up signal, a workflow
     * task and an activity between each commit and its POST. It takes no new event after BATCH_BUDGET_MS, so that one
     * activity stays short, and returns as soon as nothing came for LINGER_MS (or nothing was pending at all).
     */
    async deliverWebhookBatch(p: { subscriptionId: string; limit: number }): Promise<WebhookBatchOutcome> {
      const began = Date.now();
      const bell = webhooks?.bell;
      const cancelled = activityCancellation();
      let delivered = 0;
      let lastSent = began;
      for (;;) {
        const rung = bell?.rung ?? 0;
        const round = await deliverPending(p.subscriptionId, p.limit, began);
        delivered += round.delivered;
        if (round.outcome) return { ...round.outcome, delivered };
        if (round.delivered) lastSent = Date.now();
        if (round.more) return { state: 'enabled', delivered, more: true };
        // Nothing more pending now: wait for the next commit while this subscription is busy, else end the turn.
        const linger = Math.min(lastSent + LINGER_MS, began + BATCH_BUDGET_MS) - Date.now();
        if (!bell || !delivered || !(await bell.wait(rung, linger, cancelled))) return { state: 'enabled', delivered, more: false };
      }
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
