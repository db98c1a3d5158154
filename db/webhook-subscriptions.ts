import { randomBytes } from 'node:crypto';
import type { Knex } from 'knex';
import type { Actor } from '../common/roles';
import { appendAudit } from './audit';
import { newestDomainEventSeq } from './domain-events';
import type { Db } from './knex';

/** A Standard Webhooks secret: whsec_ and 32 random bytes in base64. */
export const newWebhookSecret = () => `whsec_${randomBytes(32).toString('base64')}`;

export interface WebhookSubscription {
  id: string;
  url: string;
  eventTypes: string[];
  description: string | null;
  state: 'enabled' | 'disabled' | 'deleted';
  disabledReason: string | null;
  failingSince: string | null;
  deliveredThrough: number;
  previousSecretExpiresAt: string | null;
  createdBy: string;
  createdAt: string;
  updatedAt: string;
}

const iso = (v: unknown) => (v ? new Date(v as string).toISOString() : null);

function toSubscription(row: Record<string, unknown>): WebhookSubscription {
  return {
    id: row.id as string,
    url: row.url as string,
    eventTypes: row.event_types as string[],
    description: (row.description as string | null) ?? null,
    state: row.state as WebhookSubscription['state'],
    disabledReason: (row.disabled_reason as string | null) ?? null,
    failingSince: iso(row.failing_since),
    deliveredThrough: Number(row.delivered_through),
    previousSecretExpiresAt: iso(row.previous_secret_expires_at),
    createdBy: row.created_by as string,
    createdAt: iso(row.created_at)!,
    updatedAt: iso(row.updated_at)!,
  };
}

const audit = (trx: Knex.Transaction, actor: Actor, action: string, id: string, details: Record<string, unknown>) =>
  appendAudit(trx, { actorId: actor.userId, actor: actor.username, action, entityType: 'webhook_subscription', entityId: id, details });

/** A new subscription starts after the newest event: it receives what happens from now on. Returns its secret once. */
export async function createWebhookSubscription(
  db: Db,
  actor: Actor,
  s: { url: string; eventTypes: string[]; description?: string | null },
): Promise<{ subscription: WebhookSubscription; secret: string }> {
  return db.transaction(async (trx) => {
    const secret = newWebhookSecret();
    const [row] = await trx('webhook_subscriptions')
      .insert({
        url: s.url,
        event_types: s.eventTypes,
        description: s.description ?? null,
        secret,
        delivered_through: await newestDomainEventSeq(trx),
        created_by: actor.username,
      })
      .returning('*');
    await audit(trx, actor, 'webhook.subscription_created', row.id, { url: s.url, eventTypes: s.eventTypes });
    return { subscription: toSubscription(row), secret };
  });
}

export async function listWebhookSubscriptions(db: Db): Promise<WebhookSubscription[]> {
  return (await db('webhook_subscriptions').whereNot('state', 'deleted').orderBy('created_at')).map(toSubscription);
}

export async function findWebhookSubscription(db: Db | Knex.Transaction, id: string): Promise<WebhookSubscription | null> {
  const row = await db('webhook_subscriptions').where({ id }).whereNot('state', 'deleted').first();
  return row ? toSubscription(row) : null;
}

/** Changes URL, types, description or state; enabling clears the failure record so the failure period starts again. */
export async function updateWebhookSubscription(
  db: Db,
  actor: Actor,
  id: string,
  change: { url?: string; eventTypes?: string[]; description?: string | null; enabled?: boolean },
): Promise<WebhookSubscription | null> {
  return db.transaction(async (trx) => {
    const before = await trx('webhook_subscriptions').where({ id }).whereNot('state', 'deleted').forNoKeyUpdate().first();
    if (!before) return null;
    const patch: Record<string, unknown> = { updated_at: trx.fn.now() };
    if (change.url !== undefined) patch.url = change.url;
    if (change.eventTypes !== undefined) patch.event_types = change.eventTypes;
    if (change.description !== undefined) patch.description = change.description;
    if (change.enabled === true) Object.assign(patch, { state: 'enabled', disabled_reason: null, failing_since: null });
    if (change.enabled === false) Object.assign(patch, { state: 'disabled', disabled_reason: `disabled by ${actor.username}` });
    const [row] = await trx('webhook_subscriptions').where({ id }).update(patch).returning('*');
    await audit(trx, actor, 'webhook.subscription_updated', id, {
      old: { url: before.url, eventTypes: before.event_types, state: before.state },
      new: { url: row.url, eventTypes: row.event_types, state: row.state },
    });
    return toSubscription(row);
  });
}

/** Deleted subscriptions are kept (their delivery records refer to them), with their secrets forgotten. */
export async function deleteWebhookSubscription(db: Db, actor: Actor, id: string): Promise<boolean> {
  return db.transaction(async (trx) => {
    const n = await trx('webhook_subscriptions')
      .where({ id })
      .whereNot('state', 'deleted')
      .update({ state: 'deleted', secret: '', previous_secret: null, previous_secret_expires_at: null, updated_at: trx.fn.now() });
    if (n) await audit(trx, actor, 'webhook.subscription_deleted', id, {});
    return n > 0;
  });
}

/** A new secret; the current one stays valid for the overlap, so receivers can switch without losing deliveries. */
export async function rotateWebhookSecret(
  db: Db,
  actor: Actor,
  id: string,
  overlapMs: number,
): Promise<{ secret: string; previousSecretExpiresAt: string } | null> {
  return db.transaction(async (trx) => {
    const row = await trx('webhook_subscriptions').where({ id }).whereNot('state', 'deleted').forNoKeyUpdate().first();
    if (!row) return null;
    const secret = newWebhookSecret();
    const expires = new Date(Date.now() + overlapMs);
    await trx('webhook_subscriptions')
      .where({ id })
      .update({ secret, previous_secret: row.secret, previous_secret_expires_at: expires, updated_at: trx.fn.now() });
    await audit(trx, actor, 'webhook.secret_rotated', id, { previousSecretExpiresAt: expires.toISOString() });
    return { secret, previousSecretExpiresAt: expires.toISOString() };
  });
}

export async function listDeadLetters(db: Db, subscriptionId: string) {
  const rows = await db('webhook_deliveries as d')
    .join('domain_events as e', 'e.seq', 'd.event_seq')
    .where({ 'd.subscription_id': subscriptionId, 'd.state': 'dead' })
    .orderBy('d.event_seq')
    .select(
      'e.id as eventId',
      'd.event_seq as seq',
      'e.type',
      'd.attempts',
      'd.last_status as lastStatus',
      'd.last_error as lastError',
      'd.updated_at as deadSince',
    );
  return rows.map((r) => ({ ...r, seq: Number(r.seq), deadSince: iso(r.deadSince) }));
}

/** Marks dead letters for redelivery (all, or the named events); the run sends them before anything newer. */
export async function requestRedelivery(db: Db, actor: Actor, subscriptionId: string, eventIds?: string[]): Promise<number> {
  return db.transaction(async (trx) => {
    const q = trx('webhook_deliveries').where({ subscription_id: subscriptionId, state: 'dead' });
    if (eventIds?.length) q.whereIn('event_seq', trx('domain_events').whereIn('id', eventIds).select('seq'));
    const rows = await q.update({ state: 'redeliver', updated_at: trx.fn.now() }).returning('event_seq');
    if (rows.length) await audit(trx, actor, 'webhook.redelivery_requested', subscriptionId, { events: rows.length });
    return rows.length;
  });
}
