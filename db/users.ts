import type { Actor, Role } from '../common/roles';
import { appendAudit } from './audit';
import { diff } from './field-changes';
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

/** The fields of a user an admin may change. */
export interface UserEdit {
  printedName?: string;
  email?: string;
  roles?: Role[];
  active?: boolean;
}

const USER_FIELDS = ['printed_name', 'email', 'roles', 'active'] as const;

/**
 * Changes a user's printed name, email, roles or active flag; the audit event records each field's old and new
 * value. Undefined when there is no such user.
 */
export async function updateUser(db: Db, actor: Actor, username: string, edit: UserEdit) {
  return db.transaction(async (trx) => {
    const before = await trx('users').where({ username }).forNoKeyUpdate().first(['id', 'username', ...USER_FIELDS]);
    if (!before) return undefined;
    const values = Object.fromEntries(
      Object.entries({ printed_name: edit.printedName, email: edit.email, roles: edit.roles, active: edit.active }).filter(
        ([, v]) => v !== undefined,
      ),
    );
    const [after] = Object.keys(values).length
      ? await trx('users').where({ id: before.id }).update(values).returning(['id', 'username', ...USER_FIELDS])
      : [before];
    const changes = diff(before, after, { fields: USER_FIELDS });
    if (changes.length) {
      await appendAudit(trx, {
        actorId: actor.userId,
        actor: actor.username,
        action: 'user.updated',
        entityType: 'user',
        entityId: username,
        details: { changes },
      });
    }
    return { user: after as { id: string; username: string; printed_name: string; email: string; roles: Role[]; active: boolean }, changes };
  });
}
