import { createHash, randomBytes } from 'node:crypto';
import type { Knex } from 'knex';
import type { GrantAction } from '../common/grants';
import { isGrantId } from '../common/grants';
import type { Role } from '../common/roles';
import type { Db } from './knex';

/** JSON with object keys sorted and undefined dropped: the same value always hashes the same. */
function canonicalJson(value: unknown): string {
  if (value === null || typeof value !== 'object') return JSON.stringify(value ?? null);
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  const entries = Object.entries(value as Record<string, unknown>)
    .filter(([, v]) => v !== undefined)
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(',')}}`;
}

/** SHA-256 of the action and its canonical arguments (built with common/grants' grantedArgs). */
export function grantArgsHash(action: GrantAction, args: unknown): string {
  return createHash('sha256').update(canonicalJson({ action, args }), 'utf8').digest('hex');
}

export interface GrantRequest {
  userId: string;
  workflowId: string;
  action: GrantAction;
  args: unknown;
  /** For an electronic signature: what it means, what it signs, and when the API re-verified the password. */
  signature?: { meaning: string; contentHash: string; passwordVerifiedAt: string };
  ttlMs: number;
}

/** Writes a single-use grant after the API has authenticated the caller; returns the ID the run is sent. */
export async function issueGrant(db: Db | Knex.Transaction, request: GrantRequest): Promise<string> {
  const id = randomBytes(32).toString('base64url');
  await db('action_grants').insert({
    id,
    user_id: request.userId,
    workflow_id: request.workflowId,
    action: request.action,
    args_hash: grantArgsHash(request.action, request.args),
    signature_meaning: request.signature?.meaning ?? null,
    signature_content_hash: request.signature?.contentHash ?? null,
    password_verified_at: request.signature?.passwordVerifiedAt ?? null,
    expires_at: db.raw(`now() + make_interval(secs => ?)`, [request.ttlMs / 1000]),
  });
  return id;
}

export type GrantRefusal =
  | 'missing'
  | 'unknown'
  | 'consumed'
  | 'expired'
  | 'other_run'
  | 'other_action'
  | 'other_user'
  | 'other_arguments'
  | 'signature_unverified'
  | 'user_inactive'
  | 'role_missing';

export interface GrantClaim {
  grantId: unknown;
  workflowId: string;
  action: GrantAction;
  /** The user the run names as acting. */
  userId: string;
  args: unknown;
  /** A signature must come with a grant whose password check bound this meaning and content hash. */
  signature?: { meaning: string; contentHash: string };
  /** The consuming activity execution (activityKey): its own retry finds the grant consumed by itself. */
  consumedBy: string;
}

export interface GrantedUser {
  id: string;
  username: string;
  printed_name: string;
  roles: Role[];
  active: boolean;
}

export type GrantVerdict = { ok: true; user: GrantedUser } | { ok: false; reason: GrantRefusal };

/**
 * Checks and consumes a grant inside the caller's transaction, so the grant is spent exactly when the action is
 * written (a refusal rolls the consumption back with everything else). Re-reads the user, so a person
 * deactivated since the API checked them cannot act. The usual case is one statement: the conditional UPDATE
 * consumes an unused, unexpired grant and answers it with its user; only a miss reads the grant to say why (or
 * finds the caller's own earlier consumption, on a retry of the same activity). Concurrent claims serialise on the
 * row: the second finds the grant consumed.
 */
export async function consumeGrant(trx: Knex.Transaction, claim: GrantClaim): Promise<GrantVerdict> {
  if (!isGrantId(claim.grantId)) return { ok: false, reason: 'missing' };
  const { rows } = await trx.raw(
    `update action_grants g set consumed_at = now(), consumed_by = ?
       from users u
      where g.id = ? and u.id = g.user_id and g.consumed_at is null and g.expires_at > now()
     returning g.user_id, g.workflow_id, g.action, g.args_hash, g.signature_meaning, g.signature_content_hash,
               g.password_verified_at, u.id, u.username, u.printed_name, u.roles, u.active`,
    [claim.consumedBy, claim.grantId],
  );
  let grant = rows[0];
  const consumedNow = grant !== undefined;
  if (!grant) {
    const earlier = await trx('action_grants as g')
      .join('users as u', 'u.id', 'g.user_id')
      .where('g.id', claim.grantId)
      .first(
        'g.user_id',
        'g.workflow_id',
        'g.action',
        'g.args_hash',
        'g.signature_meaning',
        'g.signature_content_hash',
        'g.password_verified_at',
        'g.consumed_by',
        'u.id',
        'u.username',
        'u.printed_name',
        'u.roles',
        'u.active',
      );
    if (!earlier) return { ok: false, reason: 'unknown' };
    if (earlier.consumed_by !== claim.consumedBy) return { ok: false, reason: earlier.consumed_by ? 'consumed' : 'expired' };
    grant = earlier;
  }
  const refusal = mismatch(grant, claim);
  if (refusal) {
    // The grant stays for the request it was written for, whatever the caller does with its transaction.
    if (consumedNow) await trx('action_grants').where({ id: claim.grantId }).update({ consumed_at: null, consumed_by: null });
    return { ok: false, reason: refusal };
  }
  const { id, username, printed_name, roles, active } = grant as GrantedUser;
  return { ok: true, user: { id, username, printed_name, roles, active } };
}

function mismatch(grant: Record<string, unknown>, claim: GrantClaim): GrantRefusal | null {
  if (grant.workflow_id !== claim.workflowId) return 'other_run';
  if (grant.action !== claim.action) return 'other_action';
  if (grant.user_id !== claim.userId) return 'other_user';
  if (grant.args_hash !== grantArgsHash(claim.action, claim.args)) return 'other_arguments';
  if (claim.signature) {
    const bound =
      grant.password_verified_at !== null &&
      grant.signature_meaning === claim.signature.meaning &&
      grant.signature_content_hash === claim.signature.contentHash;
    if (!bound) return 'signature_unverified';
  }
  if (!grant.active) return 'user_inactive';
  return null;
}
