import { createHash, randomBytes, scrypt as scryptCb, timingSafeEqual, type ScryptOptions } from 'node:crypto';
import type { Actor, Role } from '../common/roles';
import { appendAudit } from './audit';
import type { Db } from './knex';

const scrypt = (password: string, salt: Buffer, keylen: number, options: ScryptOptions) =>
  new Promise<Buffer>((resolve, reject) => scryptCb(password, salt, keylen, options, (err, key) => (err ? reject(err) : resolve(key))));

const SCRYPT = { N: 16384, r: 8, p: 1, keylen: 32 };

export async function hashPassword(password: string): Promise<string> {
  const salt = randomBytes(16);
  const key = await scrypt(password, salt, SCRYPT.keylen, { N: SCRYPT.N, r: SCRYPT.r, p: SCRYPT.p });
  return ['scrypt', SCRYPT.N, SCRYPT.r, SCRYPT.p, salt.toString('base64'), key.toString('base64')].join('$');
}

export async function verifyPassword(password: string, stored: string | null): Promise<boolean> {
  if (!stored) return false;
  const [scheme, N, r, p, salt, hash] = stored.split('$');
  if (scheme !== 'scrypt') return false;
  const expected = Buffer.from(hash, 'base64');
  const actual = await scrypt(password, Buffer.from(salt, 'base64'), expected.length, {
    N: Number(N),
    r: Number(r),
    p: Number(p),
  });
  return timingSafeEqual(actual, expected);
}

/** API keys look like lf_<prefix>_<secret>; only a SHA-256 of the whole key is stored. */
export function newApiKey(): { key: string; prefix: string; hash: string } {
  const prefix = randomBytes(6).toString('hex');
  const key = `lf_${prefix}_${randomBytes(24).toString('base64url')}`;
  return { key, prefix, hash: sha256Hex(key) };
}

export function sha256Hex(value: string): string {
  return createHash('sha256').update(value, 'utf8').digest('hex');
}

export interface UserRow {
  id: string;
  username: string;
  printed_name: string;
  email: string;
  roles: Role[];
  active: boolean;
}

/** An active user by username (deactivated users cannot be assigned, notified or act), or undefined. */
export async function findActiveUser(db: Db, username: string): Promise<{ id: string; username: string } | undefined> {
  return db('users').where({ username, active: true }).first('id', 'username');
}

/** The active users among these usernames. */
export async function findActiveUsers(db: Db, usernames: readonly string[]): Promise<{ id: string; username: string }[]> {
  return usernames.length ? db('users').whereIn('username', usernames).where({ active: true }).select('id', 'username') : [];
}

export function toActor(user: UserRow): Actor {
  return { userId: user.id, username: user.username, printedName: user.printed_name, roles: user.roles };
}

/** What a verified API key stands for: its user, and the key itself (for last use, revocation and codec sessions). */
export interface ApiKeyCredential {
  user: UserRow;
  keyId: string;
  prefix: string;
  expiresAt: Date | null;
}

export const API_KEY_PATTERN = /^lf_([0-9a-f]{12})_[A-Za-z0-9_-]{20,}$/;

/** The live key (not revoked, not expired, its user active) whose hash matches, or undefined. */
export async function credentialForApiKey(db: Db, key: string): Promise<ApiKeyCredential | undefined> {
  const match = API_KEY_PATTERN.exec(key);
  if (!match) return undefined;
  const row = await db('api_keys as k')
    .join('users as u', 'u.id', 'k.user_id')
    .where('k.prefix', match[1])
    .whereNull('k.revoked_at')
    .where((q) => q.whereNull('k.expires_at').orWhere('k.expires_at', '>', db.fn.now()))
    .where('u.active', true)
    .first('u.id', 'u.username', 'u.printed_name', 'u.email', 'u.roles', 'u.active', 'k.key_hash', 'k.id as key_id', 'k.expires_at');
  if (!row) return undefined;
  const expected = Buffer.from(row.key_hash, 'hex');
  const actual = Buffer.from(sha256Hex(key), 'hex');
  if (expected.length !== actual.length || !timingSafeEqual(expected, actual)) return undefined;
  const { key_id: keyId, expires_at: expiresAt, key_hash: _hash, ...user } = row;
  return { user: user as UserRow, keyId, prefix: match[1], expiresAt };
}

export async function userForApiKey(db: Db, key: string): Promise<UserRow | undefined> {
  return (await credentialForApiKey(db, key))?.user;
}

export interface NewUser {
  username: string;
  printedName: string;
  email: string;
  roles: Role[];
  password?: string;
}

/**
 * Creates a user with a first API key named "initial". A signing password is set here only by the development seed
 * and the tests; people set their own through enrolment. The key expires after keyLifetimeMs (never when absent).
 */
export async function createUser(
  db: Db,
  user: NewUser,
  createdBy = 'system',
  options: { keyLifetimeMs?: number } = {},
): Promise<{ user: UserRow; apiKey: string }> {
  const passwordHash = user.password ? await hashPassword(user.password) : null;
  const keyExpiresAt = options.keyLifetimeMs ? new Date(Date.now() + options.keyLifetimeMs) : null;
  const apiKey = newApiKey();
  return db.transaction(async (trx) => {
    const [row] = await trx('users')
      .insert({
        username: user.username,
        printed_name: user.printedName,
        email: user.email,
        roles: user.roles,
        password_hash: passwordHash,
        password_changed_at: passwordHash ? trx.fn.now() : null,
      })
      .returning(['id', 'username', 'printed_name', 'email', 'roles', 'active']);
    await trx('api_keys').insert({
      user_id: row.id,
      prefix: apiKey.prefix,
      key_hash: apiKey.hash,
      label: 'initial',
      expires_at: keyExpiresAt,
    });
    await appendAudit(trx, {
      actor: createdBy,
      action: 'user.created',
      entityType: 'user',
      entityId: row.username,
      details: { roles: user.roles },
    });
    return { user: row as UserRow, apiKey: apiKey.key };
  });
}

export interface SigningPolicy {
  maxFailures: number;
  failureWindowMs: number;
  lockMs: number;
  /** SIGNING_PASSWORD_MAX_AGE: an older password signs nothing until it is changed; 0 or absent, passwords do not age. */
  maxAgeMs?: number;
}

export type SigningCheck =
  | { ok: true }
  | { ok: false; reason: 'not_set' }
  | { ok: false; reason: 'expired'; changedAt: Date; maxAgeMs: number }
  | { ok: false; reason: 'locked'; lockedUntil: Date }
  | { ok: false; reason: 'wrong_password'; remaining: number; lockedUntil?: Date };

/**
 * Re-authenticates a signer (21 CFR 11.200) and counts failures (11.300(d)): too many wrong passwords within the
 * window lock the user's signing for a while. Every failure and every lock is recorded in the audit trail.
 */
export async function checkSigningPassword(
  db: Db,
  actor: Actor,
  password: string,
  policy: SigningPolicy,
  context: { entityType: string; entityId: string },
  options: { ignoreAge?: boolean } = {},
): Promise<SigningCheck> {
  const user = await db('users').where({ id: actor.userId }).first('password_hash', 'signing_locked_until', 'password_changed_at');
  const now = new Date();
  if (user?.signing_locked_until && user.signing_locked_until > now) {
    return { ok: false, reason: 'locked', lockedUntil: user.signing_locked_until };
  }
  // Nothing to compare with: the person has not enrolled yet, or an admin reset the password.
  if (!user?.password_hash) return { ok: false, reason: 'not_set' };
  const maxAgeMs = policy.maxAgeMs ?? 0;
  const changedAt: Date | null = user.password_changed_at;
  if (!options.ignoreAge && maxAgeMs > 0 && changedAt && now.getTime() - changedAt.getTime() > maxAgeMs) {
    return { ok: false, reason: 'expired', changedAt, maxAgeMs };
  }
  if (await verifyPassword(password, user?.password_hash ?? null)) {
    await db('users').where({ id: actor.userId }).update({ signing_failures: 0, signing_failure_window_start: null });
    return { ok: true };
  }
  return db.transaction(async (trx) => {
    const windowStart = new Date(now.getTime() - policy.failureWindowMs);
    const [row] = await trx('users')
      .where({ id: actor.userId })
      .update({
        signing_failures: trx.raw('case when signing_failure_window_start > ? then signing_failures + 1 else 1 end', [windowStart]),
        signing_failure_window_start: trx.raw('case when signing_failure_window_start > ? then signing_failure_window_start else ? end', [
          windowStart,
          now,
        ]),
      })
      .returning(['signing_failures']);
    const failures: number = row.signing_failures;
    await appendAudit(trx, {
      actorId: actor.userId,
      actor: actor.username,
      action: 'signature.password_rejected',
      entityType: context.entityType,
      entityId: context.entityId,
      details: { consecutiveFailures: failures },
    });
    if (failures < policy.maxFailures) return { ok: false, reason: 'wrong_password', remaining: policy.maxFailures - failures };
    const lockedUntil = new Date(now.getTime() + policy.lockMs);
    await trx('users')
      .where({ id: actor.userId })
      .update({ signing_locked_until: lockedUntil, signing_failures: 0, signing_failure_window_start: null });
    await appendAudit(trx, {
      actorId: actor.userId,
      actor: actor.username,
      action: 'signature.signing_locked',
      entityType: 'user',
      entityId: actor.username,
      details: { lockedUntil: lockedUntil.toISOString(), failures },
    });
    return { ok: false, reason: 'wrong_password', remaining: 0, lockedUntil };
  });
}
