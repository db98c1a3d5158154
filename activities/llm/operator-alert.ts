import { appendAudit } from '../../db/audit';
import type { Db } from '../../db/knex';
import { queueNotifications } from '../../db/notifications';
import { resolveRecipients } from '../../db/recipients';
import type { LlmErrorKind } from './errors';
import type { LlmProviderName } from './types';

const WHAT_TO_DO: Partial<Record<LlmErrorKind, string>> = {
  quota_exhausted: 'is out of credit or over its spend limit. Add credit or raise the limit in the provider account.',
  auth: "refused labflow's credentials (HTTP 401/403). Check the API key and its permissions.",
  not_configured: 'does not accept the configured model or parameters. Check the model name in the configuration.',
};

/**
 * Tells IT operators and admins (in-app and by email) that a summary provider needs a person: keys, billing or the
 * model name. One alert per provider, kind and hour, however many attempts fail meanwhile. Names no patient, note or
 * job: only the provider and the kind of failure. Returns the outbox IDs to deliver after the transaction.
 */
export async function alertOperators(
  db: Db,
  mailDomain: string,
  alert: { provider: LlmProviderName; kind: LlmErrorKind; now?: Date },
): Promise<string[]> {
  const hour = (alert.now ?? new Date()).toISOString().slice(0, 13);
  const idempotencyKey = `llm-provider-alert:${alert.provider}:${alert.kind}:${hour}`;
  const what = WHAT_TO_DO[alert.kind] ?? `failed with ${alert.kind}.`;
  return db.transaction(async (trx) => {
    await appendAudit(trx, {
      actor: 'system:soap-summary',
      action: 'llm.provider_alert',
      entityType: 'llm_provider',
      entityId: alert.provider,
      details: { kind: alert.kind, hour: `${hour}:00Z` },
      idempotencyKey,
    });
    return queueNotifications(
      trx,
      await resolveRecipients(trx, [
        { kind: 'role', role: 'it_operator' },
        { kind: 'role', role: 'admin' },
      ]),
      {
        idempotencyKey,
        kind: 'llm.provider_alert',
        title: `Summary provider ${alert.provider}: ${alert.kind.replace(/_/g, ' ')}`,
        body:
          `The ${alert.provider} summary provider ${what}\n` +
          'Summaries move on to the next configured provider meanwhile (and to the extractive summary when none is left). ' +
          'This alert is sent at most once an hour for this provider and failure.',
      },
      mailDomain,
    );
  });
}
