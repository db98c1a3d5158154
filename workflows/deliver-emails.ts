import { mail } from './lib';

/**
 * Delivers emails that the API queued in the outbox inside a transaction of its own (a privacy officer's alert of
 * a break-glass access): the API holds no mail relay, so the worker's delivery activity sends them, with its
 * retries, exactly as it does for every process.
 */
export async function deliverEmailsWorkflow(outboxIds: string[]): Promise<{ sent: number }> {
  return mail.deliverEmails(outboxIds);
}
