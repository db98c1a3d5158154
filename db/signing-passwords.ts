import type { Knex } from 'knex';
import { hashPassword, verifyPassword } from './identity';

/**
 * Whether the password is the person's current signing password or one of their latest earlier ones: `count` is
 * how many passwords are remembered, the current one included (0: none).
 */
export async function passwordWasUsed(trx: Knex | Knex.Transaction, userId: string, password: string, count: number): Promise<boolean> {
  if (count <= 0) return false;
  const user = await trx('users').where({ id: userId }).first('password_hash');
  const earlier: string[] = await trx('signing_password_history')
    .where({ user_id: userId })
    .orderBy('retired_at', 'desc')
    .limit(user?.password_hash ? count - 1 : count)
    .pluck('password_hash');
  const hashes = [...(user?.password_hash ? [user.password_hash as string] : []), ...earlier];
  for (const hash of hashes) if (await verifyPassword(password, hash)) return true;
  return false;
}

/**
 * Retires the current signing password (kept as a hash, to refuse its reuse) and leaves the person without one:
 * the old password signs nothing from now on.
 */
export async function retireSigningPassword(trx: Knex.Transaction, userId: string, keep: number): Promise<void> {
  const user = await trx('users').where({ id: userId }).first('password_hash');
  if (user?.password_hash)
    await trx('signing_password_history').insert({
      user_id: userId,
      password_hash: user.password_hash,
      // Several changes in one transaction still keep their order.
      retired_at: trx.raw('clock_timestamp()'),
    });
  await trx('users').where({ id: userId }).update({ password_hash: null, password_changed_at: null });
  await pruneHistory(trx, userId, keep);
}

/** Sets a new signing password (already checked against the policy); a new password also lifts a signing lock. */
export async function setSigningPassword(trx: Knex.Transaction, userId: string, password: string, keep: number): Promise<void> {
  await retireSigningPassword(trx, userId, keep);
  await trx('users')
    .where({ id: userId })
    .update({
      password_hash: await hashPassword(password),
      password_changed_at: trx.fn.now(),
      signing_failures: 0,
      signing_failure_window_start: null,
      signing_locked_until: null,
    });
}

/** Earlier passwords beyond those the policy compares with are of no further use, and go. */
async function pruneHistory(trx: Knex.Transaction, userId: string, keep: number): Promise<void> {
  const kept = trx('signing_password_history')
    .where({ user_id: userId })
    .orderBy('retired_at', 'desc')
    .limit(Math.max(keep, 0))
    .select('id');
  await trx('signing_password_history').where({ user_id: userId }).whereNotIn('id', kept).delete();
}
