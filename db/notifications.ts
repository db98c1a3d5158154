import { randomUUID } from 'node:crypto';
import type { Knex } from 'knex';
import type { Recipient } from './recipients';
import type { Db } from './knex';

export interface NotificationMessage {
  /** The same key to the same user is recorded once, however often the caller retries. */
  idempotencyKey: string;
  kind: string;
  title: string;
  body: string;
  link?: string;
  email?: boolean;
  /** False: email only, no in-app row (a person who chose email but not in-app for their notices). */
  inApp?: boolean;
}

/**
 * Records in-app notifications and, for email, rows in the transactional outbox, inside the caller's transaction.
 * Returns the outbox IDs to deliver once the transaction has committed.
 */
export async function queueNotifications(
  trx: Knex | Knex.Transaction,
  recipients: Recipient[],
  message: NotificationMessage,
  mailDomain: string,
): Promise<string[]> {
  if (recipients.length === 0) return [];
  if (message.inApp !== false)
    await trx('notifications')
      .insert(
        recipients.map((r) => ({
          idempotency_key: message.idempotencyKey,
          user_id: r.id,
          kind: message.kind,
          title: message.title,
          body: message.body,
          link: message.link ?? null,
        })),
      )
      .onConflict(['idempotency_key', 'user_id'])
      .ignore();
  if (message.email === false) return [];
  const rows = recipients.map((r) => ({
    idempotency_key: `${message.idempotencyKey}:${r.id}`,
    message_id: `<${randomUUID()}@${mailDomain}>`,
    to_address: `${r.printed_name} <${r.email}>`,
    subject: `[labflow] ${message.title}`,
    body: `${message.body}${message.link ? `\n\n${message.link}` : ''}\n`,
  }));
  await trx('email_outbox').insert(rows).onConflict('idempotency_key').ignore();
  const queued = await trx('email_outbox')
    .whereIn(
      'idempotency_key',
      rows.map((r) => r.idempotency_key),
    )
    .where('state', 'pending')
    .pluck('id');
  return queued;
}

export async function listNotifications(db: Db, userId: string, unreadOnly: boolean, limit: number, offset: number) {
  const query = db('notifications')
    .select('id', 'kind', 'title', 'body', 'link', 'created_at', 'read_at')
    .where('user_id', userId)
    .orderBy('created_at', 'desc')
    .limit(limit)
    .offset(offset);
  if (unreadOnly) query.whereNull('read_at');
  return query;
}

export async function markNotificationRead(db: Db, userId: string, id: string): Promise<boolean> {
  const found = await db('notifications').where({ id, user_id: userId }).first('id', 'read_at');
  if (!found) return false;
  if (!found.read_at) await db('notifications').where({ id }).update({ read_at: db.fn.now() });
  return true;
}
