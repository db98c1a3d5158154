import type { Knex } from 'knex';
import { URGENT_CHANNELS, type Channel, type DeliveryChannel, type Priority } from '../common/notifications';
import { queueNotifications } from '../db/notifications';
import type { Recipient } from '../db/recipients';
import { currentTemplateVersion, renderNotice, type NoticeFacts } from './notice-templates';

export interface NewNotice {
  /** The same key is one notice, however often the writing activity runs. */
  idempotencyKey: string;
  kind: string;
  priority: Priority;
  subjectType: string;
  subjectId: string;
  /** Small facts the template words (a task's title, a sequence number): no PHI. */
  facts: Record<string, unknown>;
  link?: string;
  recipients: Recipient[];
}

/** A delivery the notice's run makes: the channels that leave labflow (Slack, SMS). */
export interface RemoteDelivery {
  userId: string;
  channel: 'slack' | 'sms';
}

export interface NoticeRow {
  id: string;
  idempotency_key: string;
  kind: string;
  template_version: number;
  priority: Priority;
  subject_type: string;
  subject_id: string;
  facts: Record<string, unknown>;
  link: string | null;
  state: string;
  step: number;
}

export const noticeFacts = (n: NoticeRow): NoticeFacts => ({
  kind: n.kind,
  priority: n.priority,
  subjectType: n.subject_type,
  subjectId: n.subject_id,
  facts: n.facts,
  link: n.link,
});

/**
 * Writes a notice and its first step inside the caller's transaction: the in-app rows and the outbox emails commit
 * with the business change (as every notification in labflow does); Slack and SMS are left pending for the
 * notice's run. Returns the notice's ID, the outbox to deliver, and whether the run has anything to do.
 */
export async function writeNotice(
  trx: Knex.Transaction,
  notice: NewNotice,
  mailDomain: string,
): Promise<{ noticeId: string; outboxIds: string[]; needsRun: boolean }> {
  const inserted = await trx('notices')
    .insert({
      idempotency_key: notice.idempotencyKey,
      kind: notice.kind,
      template_version: currentTemplateVersion(notice.kind),
      priority: notice.priority,
      subject_type: notice.subjectType,
      subject_id: notice.subjectId,
      facts: JSON.stringify(notice.facts),
      link: notice.link ?? null,
    })
    .onConflict('idempotency_key')
    .ignore()
    .returning('id');
  const row: NoticeRow = await trx('notices').where({ idempotency_key: notice.idempotencyKey }).first();
  if (!inserted.length) return { noticeId: row.id, outboxIds: [], needsRun: false };
  const step = await openStep(trx, row, notice.recipients, 0, mailDomain);
  return { noticeId: row.id, outboxIds: step.outboxIds, needsRun: notice.priority === 'urgent' || step.remote.length > 0 };
}

/** The channels a person is told on at this priority. */
async function channelsOf(trx: Knex.Transaction, userId: string, priority: Priority): Promise<DeliveryChannel[]> {
  if (priority === 'urgent') return [...URGENT_CHANNELS];
  if (priority === 'digest') {
    // Someone who turned the daily digest off (PUT /me/preferences) gets it as a normal notice instead.
    const digest = await trx('user_preferences').where({ user_id: userId }).first('digest');
    if (digest?.digest !== false) return ['digest'];
  }
  const prefs = await trx('notification_preferences').where({ user_id: userId }).first('channels');
  return (prefs?.channels as Channel[] | undefined) ?? ['email', 'in_app'];
}

/**
 * Tells the people of one step: records them, writes their in-app rows and outbox emails, and leaves their Slack
 * and SMS deliveries (and digest items) pending. People told at an earlier step are not told again.
 */
export async function openStep(
  trx: Knex.Transaction,
  notice: NoticeRow,
  recipients: Recipient[],
  step: number,
  mailDomain: string,
): Promise<{ told: number; outboxIds: string[]; remote: RemoteDelivery[] }> {
  const rendered = renderNotice(noticeFacts(notice), notice.template_version);
  const outboxIds: string[] = [];
  const remote: RemoteDelivery[] = [];
  let told = 0;
  for (const person of recipients) {
    const fresh = await trx('notice_recipients')
      .insert({ notice_id: notice.id, user_id: person.id, step })
      .onConflict(['notice_id', 'user_id'])
      .ignore()
      .returning('user_id');
    if (!fresh.length) continue;
    told += 1;
    const channels = await channelsOf(trx, person.id, notice.priority);
    const inApp = channels.includes('in_app');
    const email = channels.includes('email');
    if (inApp || email) {
      const ids = await queueNotifications(
        trx,
        [person],
        { idempotencyKey: notice.idempotency_key, kind: notice.kind, ...rendered, link: notice.link ?? undefined, inApp, email },
        mailDomain,
      );
      outboxIds.push(...ids);
    }
    await trx('notice_deliveries').insert(
      channels.map((channel) => ({
        notice_id: notice.id,
        user_id: person.id,
        channel,
        // In-app rows and outbox emails are written now; the outbox delivers the email with its own retries.
        state: channel === 'in_app' || channel === 'email' ? 'sent' : 'pending',
        sent_at: channel === 'in_app' || channel === 'email' ? trx.fn.now() : null,
      })),
    );
    for (const channel of channels) if (channel === 'slack' || channel === 'sms') remote.push({ userId: person.id, channel });
  }
  return { told, outboxIds, remote };
}
