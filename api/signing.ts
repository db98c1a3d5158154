import type { Actor } from '../common/roles';
import type { SignatureInput } from '../common/signatures';
import type { GrantAction } from '../common/grants';
import { issueGrant } from '../db/grants';
import { checkSigningPassword } from '../db/identity';
import { alertSigningLocked } from './credentials/alerts';
import type { ApiDeps } from './deps';
import { Problem } from './problem';

const DEFAULT_GRANT_TTL_MS = 5 * 60_000;

export interface SigningRequest {
  password: string;
  meaning: string;
  contentHash: string;
}

/**
 * Re-authenticates a signer (21 CFR 11.200) before any run hears of the signature: a wrong password answers 403,
 * a locked signer 423 with Retry-After (both audited by checkSigningPassword, and the lock alerts IT and QA); a
 * password older than SIGNING_PASSWORD_MAX_AGE, or none yet, answers 403 until the person sets a new one. Returns
 * what the run records; the password goes no further.
 */
export async function verifySigner(
  deps: Pick<ApiDeps, 'db' | 'config' | 'temporal' | 'log'>,
  actor: Actor,
  request: SigningRequest,
  context: { entityType: string; entityId: string },
): Promise<SignatureInput> {
  const check = await checkSigningPassword(deps.db, actor, request.password, deps.config.signing, context);
  if (!check.ok && check.reason === 'locked') {
    const seconds = Math.max(1, Math.ceil((check.lockedUntil.getTime() - Date.now()) / 1000));
    throw new Problem(
      423,
      'signing-locked',
      'Signing is locked',
      `too many wrong passwords; signing is locked until ${check.lockedUntil.toISOString()}`,
      {},
      { 'Retry-After': String(seconds) },
    );
  }
  if (!check.ok && check.reason === 'not_set') {
    throw new Problem(
      403,
      'signing-password-not-set',
      'No signing password',
      'you have no signing password yet: set one with the enrolment token emailed to you (POST /api/v1/enrolment)',
    );
  }
  if (!check.ok && check.reason === 'expired') {
    throw new Problem(
      403,
      'signing-password-expired',
      'Signing password expired',
      `your signing password was set on ${check.changedAt.toISOString()} and is older than the allowed ` +
        `${Math.round(check.maxAgeMs / 86_400_000)} day(s) (SIGNING_PASSWORD_MAX_AGE): change it with ` +
        'POST /api/v1/me/signing-password before signing',
    );
  }
  if (!check.ok) {
    if (check.lockedUntil) await alertSigningLocked(deps, actor, check.lockedUntil);
    const detail = check.lockedUntil
      ? `the password is wrong; signing is now locked until ${check.lockedUntil.toISOString()}`
      : `the password is wrong; ${check.remaining} attempt(s) left before signing is locked`;
    throw new Problem(403, 'signature-password-invalid', 'Signature not accepted', detail);
  }
  return { meaning: request.meaning, contentHash: request.contentHash, signedAt: new Date().toISOString() };
}

/**
 * Writes the single-use grant for an action the API has just authenticated (and, with a signature, re-verified
 * the password for): the run receives only its ID, and the activity that records the action consumes it.
 */
export async function grantAction(
  deps: Pick<ApiDeps, 'db' | 'config'>,
  actor: Actor,
  grant: { workflowId: string; action: GrantAction; args: unknown; signature?: SignatureInput },
): Promise<string> {
  const { signature } = grant;
  return issueGrant(deps.db, {
    userId: actor.userId,
    workflowId: grant.workflowId,
    action: grant.action,
    args: grant.args,
    signature: signature && { meaning: signature.meaning, contentHash: signature.contentHash, passwordVerifiedAt: signature.signedAt },
    ttlMs: deps.config.actionGrantTtlMs ?? DEFAULT_GRANT_TTL_MS,
  });
}
