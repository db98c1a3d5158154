import { createHash, randomBytes } from 'node:crypto';
import { toActor, type UserRow } from './identity';
import type { Db } from './knex';
import type { Actor } from '../common/roles';

const hash = (token: string) => createHash('sha256').update(token).digest('hex');

/**
 * Opens a session for the user; the token goes to the browser once, only its hash is kept. A session opened with an
 * API key lasts no longer than that key: revoked or expired, the session ends with it.
 */
export async function openCodecSession(
  db: Db,
  userId: string,
  ttlMs: number,
  apiKeyId?: string,
): Promise<{ token: string; expiresAt: Date }> {
  const token = randomBytes(32).toString('base64url');
  const expiresAt = new Date(Date.now() + ttlMs);
  await db('codec_sessions').insert({ token_hash: hash(token), user_id: userId, expires_at: expiresAt, api_key_id: apiKeyId ?? null });
  // Expired sessions of anyone go at the same time: there are few, and nothing else needs them.
  await db('codec_sessions').where('expires_at', '<', db.fn.now()).delete();
  return { token, expiresAt };
}

/** The active user behind a live session, or nothing. */
export async function codecSessionActor(db: Db, token: string): Promise<Actor | undefined> {
  const row = await db('codec_sessions as s')
    .join('users as u', 'u.id', 's.user_id')
    .where('s.token_hash', hash(token))
    .where('s.expires_at', '>', db.fn.now())
    .where('u.active', true)
    .leftJoin('api_keys as k', 'k.id', 's.api_key_id')
    .where((q) =>
      q
        .whereNull('s.api_key_id')
        .orWhere((k) => k.whereNull('k.revoked_at').where((e) => e.whereNull('k.expires_at').orWhere('k.expires_at', '>', db.fn.now()))),
    )
    .first('u.id', 'u.username', 'u.printed_name', 'u.email', 'u.roles', 'u.active');
  return row ? toActor(row as UserRow) : undefined;
}

export async function closeCodecSession(db: Db, token: string): Promise<void> {
  await db('codec_sessions')
    .where({ token_hash: hash(token) })
    .delete();
}
