import { createHash } from 'node:crypto';
import type { Knex } from 'knex';
import type { Actor, Role } from '../common/roles';
import type { SignatureInput } from '../common/signatures';
import { appendAudit } from './audit';
import { diff, type FieldChange } from './field-changes';
import type { UserRow as IdentityRow } from './identity';
import { notifyCredentialChange } from './credential-notices';
import type { Db } from './knex';
import { queueNotifications } from './notifications';
import { resolveRecipients } from './recipients';

export interface UserView {
  id: string;
  username: string;
  printedName: string;
  email: string;
  roles: Role[];
  active: boolean;
  createdAt: string;
  /** Changes with every change of name, email, roles or active flag: what a stale-change check compares. */
  version: string;
}

type UserRow = IdentityRow & { created_at: Date };

const COLUMNS = ['id', 'username', 'printed_name', 'email', 'roles', 'active', 'created_at'] as const;

/** The user's lifecycle fields, hashed: two reads of an unchanged user answer the same version. */
export function userVersion(row: Pick<UserRow, 'printed_name' | 'email' | 'roles' | 'active'>): string {
  const fields = JSON.stringify([row.printed_name, row.email, [...row.roles].sort(), row.active]);
  return createHash('sha256').update(fields).digest('hex').slice(0, 16);
}

const view = (row: UserRow): UserView => ({
  id: row.id,
  username: row.username,
  printedName: row.printed_name,
  email: row.email,
  roles: row.roles,
  active: row.active,
  createdAt: row.created_at.toISOString(),
  version: userVersion(row),
});

export interface UserFilter {
  role?: Role;
  active?: boolean;
  limit: number;
  offset: number;
}

/** Users by username, filtered by role and active flag, one page at a time, with the total that match. */
export async function listUsers(db: Db, filter: UserFilter): Promise<{ users: UserView[]; total: number }> {
  const where = (q: Knex.QueryBuilder) => {
    if (filter.role) q.whereRaw('? = any(roles)', [filter.role]);
    if (filter.active !== undefined) q.where('active', filter.active);
  };
  const [rows, [{ count }]] = await Promise.all([
    db('users').modify(where).orderBy('username').limit(filter.limit).offset(filter.offset).select(COLUMNS),
    db('users').modify(where).count<{ count: string }[]>('* as count'),
  ]);
  return { users: (rows as UserRow[]).map(view), total: Number(count) };
}

export async function readUser(db: Db, username: string): Promise<UserView | undefined> {
  const row = (await db('users').where({ username }).first(COLUMNS)) as UserRow | undefined;
  return row && view(row);
}

/** Why a lifecycle change was refused; the route turns each into its problem. */
export type LifecycleRefusal =
  | { refused: 'not_found' }
  | { refused: 'stale'; version: string }
  | { refused: 'unchanged'; detail: string }
  | { refused: 'self_deactivation' }
  | { refused: 'last_active_admin' };

export interface LifecycleChange {
  admin: Actor;
  username: string;
  reason: string;
  /** The version the admin saw; a different current version refuses the change as stale. */
  expectedVersion?: string;
  signature: SignatureInput;
  mailDomain: string;
}

export interface LifecycleResult {
  user: UserView;
  changes: FieldChange[];
  revokedKeys: number;
  closedSessions: number;
  outboxIds: string[];
}

type Change = { roles: Role[] } | { active: boolean };

/** What a lifecycle signature binds: the user, the change, and the version it was made against. */
export function lifecycleContentHash(username: string, change: Change, expectedVersion: string | undefined): string {
  const roles = 'roles' in change ? [...change.roles].sort() : undefined;
  const canonical = JSON.stringify({ username, roles, active: 'active' in change ? change.active : undefined, expectedVersion });
  return createHash('sha256').update(canonical).digest('hex');
}

/** Changes a user's roles; refused when it would leave no active admin. */
export function changeRoles(db: Db, change: LifecycleChange & { roles: Role[] }) {
  return applyChange(db, change, { roles: [...new Set(change.roles)] }, 'user.roles_changed');
}

/**
 * Deactivates a user: in one transaction the flag, every API key revoked, every codec session deleted, the audit
 * event with old and new values, QA's alert, and a notice on the credentials channel so every API process drops the
 * user's cached keys when the transaction commits.
 */
export function deactivateUser(db: Db, change: LifecycleChange) {
  return applyChange(db, change, { active: false }, 'user.deactivated');
}

/** Reactivates a user; their old keys stay revoked (they are issued a new one by the credentials routes). */
export function reactivateUser(db: Db, change: LifecycleChange) {
  return applyChange(db, change, { active: true }, 'user.reactivated');
}

async function applyChange(
  db: Db,
  change: LifecycleChange,
  values: Change,
  action: 'user.roles_changed' | 'user.deactivated' | 'user.reactivated',
): Promise<LifecycleResult | LifecycleRefusal> {
  return db.transaction(async (trx) => {
    // Every active admin's row is locked first, in one order, so two changes cannot each leave the other the last.
    await trx('users').whereRaw(`'admin' = any(roles)`).where('active', true).orderBy('id').forNoKeyUpdate().select('id');
    const before = (await trx('users').where({ username: change.username }).forNoKeyUpdate().first(COLUMNS)) as UserRow | undefined;
    if (!before) return { refused: 'not_found' } as const;
    if (change.expectedVersion && change.expectedVersion !== userVersion(before)) {
      return { refused: 'stale', version: userVersion(before) } as const;
    }
    const refusal = await ruleRefusal(trx, change, before, values);
    if (refusal) return refusal;

    const [after] = (await trx('users').where({ id: before.id }).update(values).returning(COLUMNS)) as UserRow[];
    const changes = diff(before, after, { fields: ['roles', 'active'] });
    let revokedKeys = 0;
    let closedSessions = 0;
    if (action === 'user.deactivated') {
      revokedKeys = await trx('api_keys').where({ user_id: before.id }).whereNull('revoked_at').update({ revoked_at: trx.fn.now() });
      closedSessions = await trx('codec_sessions').where({ user_id: before.id }).delete();
      await notifyCredentialChange(trx, { userId: before.id });
    }
    const { admin, signature } = change;
    await appendAudit(trx, {
      actorId: admin.userId,
      actor: admin.username,
      action,
      entityType: 'user',
      entityId: before.username,
      details: {
        changes,
        reason: change.reason,
        revokedKeys,
        closedSessions,
        signature: { printedName: admin.printedName, meaning: signature.meaning, contentHash: signature.contentHash, signedAt: signature.signedAt },
      },
    });
    const outboxIds = await alertQa(trx, action, admin, after, changes, change);
    return { user: view(after), changes, revokedKeys, closedSessions, outboxIds };
  });
}

async function ruleRefusal(trx: Knex.Transaction, change: LifecycleChange, before: UserRow, values: Change): Promise<LifecycleRefusal | undefined> {
  if ('active' in values) {
    if (before.active === values.active) {
      return { refused: 'unchanged', detail: `${before.username} is already ${before.active ? 'active' : 'deactivated'}` };
    }
    if (!values.active) {
      if (before.id === change.admin.userId) return { refused: 'self_deactivation' };
      if (before.roles.includes('admin') && (await otherActiveAdmins(trx, before.id)) === 0) return { refused: 'last_active_admin' };
    }
    return undefined;
  }
  const same = [...before.roles].sort().join(',') === [...values.roles].sort().join(',');
  if (same) return { refused: 'unchanged', detail: `${before.username} already holds exactly these roles` };
  if (!before.active) return { refused: 'unchanged', detail: `${before.username} is deactivated; reactivate them first` };
  const losesAdmin = before.roles.includes('admin') && !values.roles.includes('admin');
  if (losesAdmin && (await otherActiveAdmins(trx, before.id)) === 0) return { refused: 'last_active_admin' };
  return undefined;
}

async function otherActiveAdmins(trx: Knex.Transaction, userId: string): Promise<number> {
  const [{ count }] = await trx('users')
    .whereRaw(`'admin' = any(roles)`)
    .where('active', true)
    .whereNot('id', userId)
    .count<{ count: string }[]>('* as count');
  return Number(count);
}

const WHAT = {
  'user.roles_changed': 'changed the roles of',
  'user.deactivated': 'deactivated',
  'user.reactivated': 'reactivated',
} as const;

/** QA managers hear of every signed change to who may do what, as the platform's other QA alerts reach them. */
async function alertQa(
  trx: Knex.Transaction,
  action: keyof typeof WHAT,
  admin: Actor,
  user: UserRow,
  changes: FieldChange[],
  change: LifecycleChange,
): Promise<string[]> {
  const described = changes.map((c) => `${c.field}: ${JSON.stringify(c.old)} → ${JSON.stringify(c.new)}`).join('; ');
  return queueNotifications(
    trx,
    await resolveRecipients(trx, [{ kind: 'role', role: 'qa_manager' }]),
    {
      idempotencyKey: `${action}:${user.id}:${change.signature.signedAt}`,
      kind: action,
      title: `${admin.username} ${WHAT[action]} ${user.username}`,
      body: `${admin.printedName} (${admin.username}) ${WHAT[action]} ${user.username}, signed at ${change.signature.signedAt}. ${described}. Reason: ${change.reason}`,
      link: `/api/v1/users/${user.username}`,
    },
    change.mailDomain,
  );
}
