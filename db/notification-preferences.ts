import { DEFAULT_CHANNELS, type Channel } from '../common/notifications';
import type { Db } from './knex';

export interface NotificationPreferences {
  userId: string;
  /** The channels of normal notices. Urgent notices take SMS and Slack (and email, in-app) whatever this says. */
  channels: Channel[];
  /** Whether a Slack incoming-webhook URL is set; the URL itself is a credential and is never shown again. */
  slackWebhookSet: boolean;
  phoneNumber: string | null;
  updatedAt: string | null;
}

/** A person's channel preferences, the defaults when they never set any; null for an unknown user. */
export async function readNotificationPreferences(db: Db, userId: string): Promise<NotificationPreferences | null> {
  const user = await db('users as u')
    .leftJoin('notification_preferences as p', 'p.user_id', 'u.id')
    .where('u.id', userId)
    .first('u.id', 'p.channels', 'p.slack_webhook_url', 'p.phone_number', 'p.updated_at');
  if (!user) return null;
  return {
    userId: user.id,
    channels: user.channels ?? [...DEFAULT_CHANNELS],
    slackWebhookSet: Boolean(user.slack_webhook_url),
    phoneNumber: user.phone_number ?? null,
    updatedAt: user.updated_at ? new Date(user.updated_at).toISOString() : null,
  };
}

export interface PreferenceChanges {
  channels?: Channel[];
  slackWebhookUrl?: string | null;
  phoneNumber?: string | null;
}

export type SaveRefusal = { field: string; detail: string };

/**
 * Saves what is given, inside one transaction, refusing a choice of channel the person cannot be reached on (Slack
 * without a webhook URL, SMS without a number) as it would stand after the change.
 */
export async function saveNotificationPreferences(
  db: Db,
  userId: string,
  changes: PreferenceChanges,
): Promise<{ saved: NotificationPreferences } | { refused: SaveRefusal }> {
  return db.transaction(async (trx) => {
    const current = await trx('notification_preferences').where({ user_id: userId }).forNoKeyUpdate().first();
    const next = {
      channels: changes.channels ?? current?.channels ?? [...DEFAULT_CHANNELS],
      slack_webhook_url: changes.slackWebhookUrl !== undefined ? changes.slackWebhookUrl : (current?.slack_webhook_url ?? null),
      phone_number: changes.phoneNumber !== undefined ? changes.phoneNumber : (current?.phone_number ?? null),
    };
    if (next.channels.includes('slack') && !next.slack_webhook_url)
      return { refused: { field: 'body.channels', detail: 'slack is chosen but no slackWebhookUrl is set' } };
    if (next.channels.includes('sms') && !next.phone_number)
      return { refused: { field: 'body.channels', detail: 'sms is chosen but no phoneNumber is set' } };
    await trx('notification_preferences')
      .insert({ user_id: userId, ...next, updated_by: userId })
      .onConflict('user_id')
      .merge({ ...next, updated_by: userId, updated_at: trx.fn.now() });
    const saved = await readNotificationPreferences(trx as unknown as Db, userId);
    return { saved: saved! };
  });
}

/** What a channel needs to reach a person: their Slack webhook URL and phone number, and their chosen channels. */
export async function channelAddresses(
  db: Db,
  userId: string,
): Promise<{ channels: Channel[]; slackWebhookUrl: string | null; phoneNumber: string | null }> {
  const row = await db('notification_preferences').where({ user_id: userId }).first();
  return {
    channels: row?.channels ?? [...DEFAULT_CHANNELS],
    slackWebhookUrl: row?.slack_webhook_url ?? null,
    phoneNumber: row?.phone_number ?? null,
  };
}
