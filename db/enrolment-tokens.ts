import { createHash, randomBytes } from 'node:crypto';
import type { Knex } from 'knex';

const hash = (token: string) => createHash('sha256').update(token, 'utf8').digest('hex');

export const ENROLMENT_TOKEN_PATTERN = /^lfe_[A-Za-z0-9_-]{43}$/;

/**
 * A one-time enrolment token for the user; any token issued before and not used stops working. Only its SHA-256
 * is kept: the token itself goes out once, by email.
 */
export async function issueEnrolmentToken(
  trx: Knex.Transaction,
  userId: string,
  issuedBy: string,
  ttlMs: number,
): Promise<{ id: string; token: string; expiresAt: Date }> {
  await trx('enrolment_tokens')
    .where({ user_id: userId })
    .whereNull('used_at')
    .whereNull('superseded_at')
    .update({ superseded_at: trx.fn.now() });
  const token = `lfe_${randomBytes(32).toString('base64url')}`;
  const expiresAt = new Date(Date.now() + ttlMs);
  const [row] = await trx('enrolment_tokens')
    .insert({ user_id: userId, token_hash: hash(token), issued_by: issuedBy, expires_at: expiresAt })
    .returning(['id']);
  return { id: row.id, token, expiresAt };
}

export interface EnrolmentTokenRow {
  id: string;
  user_id: string;
  username: string;
  active: boolean;
  expires_at: Date;
  used_at: Date | null;
  superseded_at: Date | null;
}

/** The token's row with its user, locked for the enrolment that uses it; undefined for a token never issued. */
export async function lockEnrolmentToken(trx: Knex.Transaction, token: string): Promise<EnrolmentTokenRow | undefined> {
  return trx('enrolment_tokens as t')
    .join('users as u', 'u.id', 't.user_id')
    .where('t.token_hash', hash(token))
    .forNoKeyUpdate('t')
    .first('t.id', 't.user_id', 'u.username', 'u.active', 't.expires_at', 't.used_at', 't.superseded_at');
}

export async function markEnrolmentTokenUsed(trx: Knex.Transaction, id: string): Promise<void> {
  await trx('enrolment_tokens').where({ id }).update({ used_at: trx.fn.now() });
}
