import { appendAudit } from '../../db/audit';
import type { Db } from '../../db/knex';
import { queueNotifications } from '../../db/notifications';
import { resolveRecipients } from '../../db/recipients';
import type { ApiDeps } from '../deps';
import { deliverQueuedEmails } from '../temporal/notifications';
import type { FailedCredential } from '../auth';
import { DEFAULT_CREDENTIAL_SETTINGS } from './settings';

type AlertDeps = Pick<ApiDeps, 'db' | 'temporal' | 'config' | 'log'>;

const IT_AND_QA = [
  { kind: 'role', role: 'it_operator' },
  { kind: 'role', role: 'qa_manager' },
] as const;

/** Tells IT operators and QA managers, in-app and by email; once per key however often it is called. */
async function alertItAndQa(deps: AlertDeps, alert: { key: string; kind: string; title: string; body: string }): Promise<void> {
  const outboxIds = await deps.db.transaction(async (trx) =>
    queueNotifications(
      trx,
      await resolveRecipients(trx, [...IT_AND_QA]),
      { idempotencyKey: alert.key, kind: alert.kind, title: alert.title, body: alert.body },
      deps.config.mailDomain ?? 'localhost',
    ),
  );
  await deliverQueuedEmails(deps, alert.key, outboxIds);
}

/** A signer's signing has just locked after too many wrong passwords (the lock itself is audited). */
export async function alertSigningLocked(deps: AlertDeps, user: { userId: string; username: string }, lockedUntil: Date): Promise<void> {
  await alertItAndQa(deps, {
    key: `signing-locked:${user.userId}:${lockedUntil.toISOString()}`,
    kind: 'credentials.signing_locked',
    title: `Signing locked for ${user.username}`,
    body:
      `Too many wrong signing passwords were given for ${user.username}; their signing is locked until ` +
      `${lockedUntil.toISOString()}. If that person did not try to sign, their API key may be in someone else's hands.`,
  });
}

/**
 * Counts a refused bearer token by client address and by key prefix within the window (every API process writes
 * to the same table); at the threshold IT and QA hear of it once per window.
 */
export function failedKeyWatch(deps: AlertDeps): (failure: FailedCredential) => Promise<void> {
  return async (failure) => {
    const settings = deps.config.credentials ?? DEFAULT_CREDENTIAL_SETTINGS;
    try {
      const counts = await countFailure(deps.db, failure, settings.failedKeyWindowMs);
      const window = Math.floor(Date.now() / settings.failedKeyWindowMs);
      const windowText = `${Math.round(settings.failedKeyWindowMs / 60_000)} min`;
      if (counts.byIp >= settings.failedKeyAlertThreshold) {
        await alertOnce(deps, `failed-api-keys:ip:${failure.clientIp}:${window}`, {
          title: `Repeated failed API keys from ${failure.clientIp}`,
          body: `${counts.byIp} requests from ${failure.clientIp} sent an API key that was unknown, revoked or expired within ${windowText}.`,
          details: { clientIp: failure.clientIp, failures: counts.byIp },
        });
      }
      if (failure.prefix && counts.byPrefix >= settings.failedKeyAlertThreshold) {
        await alertOnce(deps, `failed-api-keys:prefix:${failure.prefix}:${window}`, {
          title: `Repeated failed uses of API key lf_${failure.prefix}_...`,
          body: `${counts.byPrefix} requests sent a wrong, revoked or expired API key with the prefix ${failure.prefix} within ${windowText} (last from ${failure.clientIp}).`,
          details: { prefix: failure.prefix, failures: counts.byPrefix },
        });
      }
    } catch (err) {
      deps.log.error({ err: err instanceof Error ? err.name : String(err) }, 'could not count a failed API key');
    }
  };
}

async function countFailure(db: Db, failure: FailedCredential, windowMs: number): Promise<{ byIp: number; byPrefix: number }> {
  const since = new Date(Date.now() - windowMs);
  await db('api_key_failures').insert({ client_ip: failure.clientIp, prefix: failure.prefix });
  // Rows older than the window count for nothing any more.
  await db('api_key_failures').where('at', '<', since).delete();
  const [ip, prefix] = await Promise.all([
    db('api_key_failures').where({ client_ip: failure.clientIp }).where('at', '>=', since).count('* as n').first(),
    failure.prefix
      ? db('api_key_failures').where({ prefix: failure.prefix }).where('at', '>=', since).count('* as n').first()
      : Promise.resolve({ n: 0 }),
  ]);
  return { byIp: Number(ip?.n ?? 0), byPrefix: Number(prefix?.n ?? 0) };
}

async function alertOnce(deps: AlertDeps, key: string, alert: { title: string; body: string; details: Record<string, unknown> }) {
  const first = await deps.db('audit_events').where({ idempotency_key: key }).first('seq');
  if (first) return;
  await appendAudit(deps.db, {
    actor: 'system:api',
    action: 'credentials.failed_api_keys',
    entityType: 'api_key_failures',
    entityId: key,
    details: alert.details,
    idempotencyKey: key,
  });
  await alertItAndQa(deps, { key, kind: 'credentials.failed_api_keys', title: alert.title, body: alert.body });
}
