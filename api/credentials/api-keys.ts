import type { Knex } from 'knex';
import type { Actor } from '../../common/roles';
import { insertApiKey, keyState, liveKeys, lockApiKey, updateApiKey } from '../../db/api-keys';
import { appendAudit } from '../../db/audit';
import { notifyCredentialChange } from '../../db/credential-notices';
import type { ApiDeps } from '../deps';
import { problems } from '../problem';
import { DEFAULT_CREDENTIAL_SETTINGS, type CredentialSettings } from './settings';

type Deps = Pick<ApiDeps, 'db' | 'config'>;

const settingsOf = (deps: Deps): CredentialSettings => deps.config.credentials ?? DEFAULT_CREDENTIAL_SETTINGS;
const days = (ms: number) => `${Math.round(ms / 86_400_000)} day(s)`;

/** The user a key route is about: the caller (/me) or, for an admin, the named user. */
export interface KeyOwner {
  id: string;
  username: string;
}

export async function findKeyOwner(db: Knex, username: string): Promise<KeyOwner & { active: boolean }> {
  const user = await db('users').where({ username }).first('id', 'username', 'active');
  if (!user) throw problems.notFound(`user ${username}`);
  return user;
}

async function audit(trx: Knex.Transaction, actor: Actor, action: string, owner: KeyOwner, details: Record<string, unknown>) {
  await appendAudit(trx, { actorId: actor.userId, actor: actor.username, action, entityType: 'user', entityId: owner.username, details });
}

/** The expiry a new key gets: the one asked for within API_KEY_MAX_LIFETIME, else API_KEY_DEFAULT_LIFETIME. */
function expiryOf(settings: CredentialSettings, asked: Date | undefined, now: number): Date {
  if (!asked) return new Date(now + Math.min(settings.apiKeyDefaultLifetimeMs, settings.apiKeyMaxLifetimeMs));
  if (asked.getTime() <= now)
    throw problems.unprocessable('api-key-expiry-past', 'expiresAt must lie in the future', { rule: 'api-key-expiry-past' });
  if (asked.getTime() - now > settings.apiKeyMaxLifetimeMs) {
    throw problems.unprocessable(
      'api-key-lifetime-too-long',
      `an API key lives at most ${days(settings.apiKeyMaxLifetimeMs)} (API_KEY_MAX_LIFETIME)`,
      {
        rule: 'api-key-lifetime-too-long',
      },
    );
  }
  return asked;
}

/** A new named key for the owner; the key itself is in the answer only. */
export async function createApiKey(deps: Deps, actor: Actor, owner: KeyOwner, request: { name: string; expiresAt?: Date }) {
  const settings = settingsOf(deps);
  return deps.db.transaction(async (trx) => {
    await trx('users').where({ id: owner.id }).forNoKeyUpdate().first('id');
    const live = await liveKeys(trx, owner.id);
    if (live.some((k) => k.label === request.name)) {
      throw problems.conflict('api-key-name-taken', `you already have a live API key named "${request.name}"; rotate or revoke it`);
    }
    if (live.length >= settings.apiKeyMaxPerUser) {
      throw problems.unprocessable(
        'api-key-limit',
        `at most ${settings.apiKeyMaxPerUser} live API keys per person (API_KEY_MAX_PER_USER)`,
        {
          rule: 'api-key-limit',
        },
      );
    }
    const created = await insertApiKey(trx, owner.id, request.name, expiryOf(settings, request.expiresAt, Date.now()));
    await audit(trx, actor, 'api_key.created', owner, { keyId: created.view.id, name: request.name, expiresAt: created.view.expiresAt });
    return { ...created.view, key: created.key };
  });
}

async function liveKeyOrProblem(trx: Knex.Transaction, owner: KeyOwner, keyId: string) {
  const row = await lockApiKey(trx, owner.id, keyId);
  if (!row) throw problems.notFound(`API key ${keyId} of ${owner.username}`);
  const state = keyState(row);
  if (state !== 'active') throw problems.conflict(`api-key-${state}`, `API key ${keyId} is ${state}`);
  if (row.replaced_by)
    throw problems.conflict('api-key-rotated', `API key ${keyId} was rotated already; its successor is ${row.replaced_by}`);
  return row;
}

/** Revokes a key at once on every API process (the notice drops it from their caches). */
export async function revokeApiKey(deps: Deps, actor: Actor, owner: KeyOwner, keyId: string) {
  return deps.db.transaction(async (trx) => {
    const row = await lockApiKey(trx, owner.id, keyId);
    if (!row) throw problems.notFound(`API key ${keyId} of ${owner.username}`);
    if (row.revoked_at) throw problems.conflict('api-key-revoked', `API key ${keyId} was revoked already`);
    const view = await updateApiKey(trx, keyId, { revoked_at: trx.fn.now() });
    await notifyCredentialChange(trx, { keyPrefix: row.prefix });
    await audit(trx, actor, 'api_key.revoked', owner, { keyId, name: row.label });
    return view;
  });
}

/**
 * Replaces a key with a new one of the same name and lifetime. The old key is revoked at once, unless an overlap
 * is asked for (at most API_KEY_ROTATION_MAX_OVERLAP): then it keeps working until the overlap ends, so that an
 * instrument can be switched to the new key without a gap.
 */
export async function rotateApiKey(deps: Deps, actor: Actor, owner: KeyOwner, keyId: string, overlapMs: number) {
  const settings = settingsOf(deps);
  if (overlapMs > settings.apiKeyRotationMaxOverlapMs) {
    throw problems.unprocessable(
      'api-key-overlap-too-long',
      `the overlap may be at most ${settings.apiKeyRotationMaxOverlapMs / 60_000} min (API_KEY_ROTATION_MAX_OVERLAP)`,
      {
        rule: 'api-key-overlap-too-long',
      },
    );
  }
  return deps.db.transaction(async (trx) => {
    const old = await liveKeyOrProblem(trx, owner, keyId);
    const now = Date.now();
    const lifetime = old.expires_at ? old.expires_at.getTime() - old.created_at.getTime() : settings.apiKeyDefaultLifetimeMs;
    const created = await insertApiKey(trx, owner.id, old.label, new Date(now + Math.min(lifetime, settings.apiKeyMaxLifetimeMs)));
    const overlapEnd = new Date(now + overlapMs);
    const previous = await updateApiKey(
      trx,
      keyId,
      overlapMs > 0
        ? { replaced_by: created.view.id, expires_at: old.expires_at && old.expires_at < overlapEnd ? old.expires_at : overlapEnd }
        : { replaced_by: created.view.id, revoked_at: trx.fn.now() },
    );
    // Cached copies of the old key must learn of its new end (or revocation) too.
    await notifyCredentialChange(trx, { keyPrefix: old.prefix });
    await audit(trx, actor, 'api_key.rotated', owner, { keyId, newKeyId: created.view.id, name: old.label, overlapMs });
    return { key: created.key, ...created.view, previous };
  });
}
