import type { Db } from './knex';

/** Whether a username is taken, by an active or a deactivated user (usernames are never reused). */
export async function usernameTaken(db: Db, username: string): Promise<boolean> {
  return Boolean(await db('users').where({ username }).first('id'));
}

/** An active user who holds the clinician role, or undefined. */
export function findActiveClinician(db: Db, username: string): Promise<{ id: string; username: string } | undefined> {
  return db('users').where({ username, active: true }).whereRaw('? = any(roles)', ['clinician']).first('id', 'username');
}

/**
 * A user by username whether active or not: a deactivated clinician is still taken off a care team by name.
 */
export function findUserByUsername(db: Db, username: string): Promise<{ id: string; username: string } | undefined> {
  return db('users').where({ username }).first('id', 'username');
}
