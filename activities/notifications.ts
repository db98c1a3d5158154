import { log } from '@temporalio/activity';
import type { ActivityDeps } from './deps';

/** What is left of a body that held a secret (an enrolment token) once the relay has accepted it. */
export const SCRUBBED = '(removed after sending: it held a one-time enrolment token)\n';

/**
 * Sends outbox messages that are still pending. A message is marked sent only after the relay accepted it;
 * if the worker dies in between, the retry sends it again with the same Message-ID, which receivers de-duplicate.
 */
export async function deliverOutbox({ db, mailer }: Pick<ActivityDeps, 'db' | 'mailer'>, outboxIds: string[]): Promise<number> {
  const pending = await db('email_outbox').whereIn('id', outboxIds).where('state', 'pending').orderBy('created_at');
  for (const row of pending) {
    await mailer.send({ messageId: row.message_id, to: row.to_address, subject: row.subject, text: row.body });
    await db('email_outbox')
      .where({ id: row.id, state: 'pending' })
      .update({ state: 'sent', sent_at: db.fn.now(), ...(row.scrub_after_send ? { body: SCRUBBED } : {}) });
  }
  return pending.length;
}

export function notificationActivities({ db, mailer }: ActivityDeps) {
  return {
    /** Delivers queued emails once their transaction has committed (see deliverOutbox). */
    async deliverEmails(outboxIds: string[]): Promise<{ sent: number }> {
      const sent = await deliverOutbox({ db, mailer }, outboxIds);
      if (sent) log.info('emails delivered', { count: sent });
      return { sent };
    },
  };
}
