import type { Role } from '../common/roles';
import { appendAudit } from './audit';
import { diff } from './field-changes';
import type { UserRow } from './identity';
import type { Db } from './knex';
import { queueNotifications } from './notifications';
import { resolveRecipients } from './recipients';

const COLUMNS = ['id', 'username', 'printed_name', 'email', 'roles', 'active'] as const;

/** What a verified token says about its person. */
export interface TokenIdentity {
  issuer: string;
  username: string;
  /** The roles the token's groups map to; absent when roles are managed in labflow. */
  roles?: Role[];
  printedName?: string;
  email?: string;
}

/**
 * 'claims': the user would be created just in time, but the token gives no email address. `outboxIds`: the emails
 * telling QA of roles the token changed, queued for delivery.
 */
export type TokenUser = { user: UserRow; outboxIds?: string[] } | { refused: 'unknown-user' | 'user-deactivated' | 'claims' };

/** The system name the trail records for changes single sign-on makes. */
const SSO_ACTOR = 'system:oidc';

/**
 * The labflow user a verified token names. An unknown username is created when just-in-time creation is on (with
 * no signing password: they sign only after enrolling one). When the token carries roles, the row is brought to
 * them, the trail recording old → new, so that assignment, notification and API-key sign-in see what the identity
 * provider says.
 */
export async function userForToken(db: Db, identity: TokenIdentity, jit: boolean, mailDomain = 'localhost'): Promise<TokenUser> {
  let user = (await db('users').where({ username: identity.username }).first(COLUMNS)) as UserRow | undefined;
  if (!user && !jit) return { refused: 'unknown-user' };
  if (!user && !identity.email) return { refused: 'claims' };
  if (!user) user = await createFromToken(db, { ...identity, email: identity.email as string });
  if (!user.active) return { refused: 'user-deactivated' };
  if (identity.roles && !sameRoles(user.roles, identity.roles)) {
    return syncRoles(db, user.username, identity.roles, identity.issuer, mailDomain);
  }
  return { user };
}

const sameRoles = (a: readonly Role[], b: readonly Role[]) => [...a].sort().join(',') === [...b].sort().join(',');

async function createFromToken(db: Db, identity: TokenIdentity & { email: string }): Promise<UserRow> {
  return db.transaction(async (trx) => {
    const [created] = await trx('users')
      .insert({
        username: identity.username,
        printed_name: identity.printedName || identity.username,
        email: identity.email,
        roles: identity.roles ?? [],
        password_hash: null,
      })
      .onConflict('username')
      .ignore()
      .returning(COLUMNS);
    // Another request of the same person's first sign-in created it a moment ago.
    if (!created) return (await trx('users').where({ username: identity.username }).first(COLUMNS)) as UserRow;
    await appendAudit(trx, {
      actor: SSO_ACTOR,
      action: 'user.created',
      entityType: 'user',
      entityId: identity.username,
      details: { source: 'oidc', issuer: identity.issuer, roles: identity.roles ?? [], signingPassword: false },
    });
    return created as UserRow;
  });
}

/** Brings the row to the token's roles, audited old → new; QA is told, as of any change of someone's roles. */
async function syncRoles(db: Db, username: string, roles: Role[], issuer: string, mailDomain: string): Promise<TokenUser> {
  return db.transaction(async (trx) => {
    const before = (await trx('users').where({ username }).forNoKeyUpdate().first(COLUMNS)) as UserRow;
    if (sameRoles(before.roles, roles)) return { user: before };
    const [after] = await trx('users').where({ id: before.id }).update({ roles }).returning(COLUMNS);
    const changes = diff(before, after, { fields: ['roles'] });
    await appendAudit(trx, {
      actor: SSO_ACTOR,
      action: 'user.roles_synced',
      entityType: 'user',
      entityId: username,
      details: { source: 'oidc', issuer, changes },
    });
    const outboxIds = await queueNotifications(
      trx,
      await resolveRecipients(trx, [{ kind: 'role', role: 'qa_manager' }]),
      {
        idempotencyKey: `user.roles_synced:${before.id}:${[...after.roles].sort().join(',')}:${Date.now()}`,
        kind: 'user.roles_synced',
        title: `The identity provider changed ${username}'s roles`,
        body: `${username}'s roles in labflow now follow the identity provider (${issuer}): ${JSON.stringify(before.roles)} → ${JSON.stringify(after.roles)}.`,
        link: `/api/v1/users/${username}`,
      },
      mailDomain,
    );
    return { user: after as UserRow, outboxIds };
  });
}
