import type { Actor } from '../common/roles';
import type { SignatureInput } from '../common/signatures';
import { checkSigningPassword } from '../db/identity';
import type { ApiDeps } from './deps';
import { Problem } from './problem';

export interface SigningRequest {
  password: string;
  meaning: string;
  contentHash: string;
}

/**
 * Re-authenticates a signer (21 CFR 11.200) before any run hears of the signature: a wrong password answers 403,
 * a locked signer 423 with Retry-After (both audited by checkSigningPassword). Returns what the run records; the
 * password goes no further.
 */
export async function verifySigner(
  deps: Pick<ApiDeps, 'db' | 'config'>,
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
  if (!check.ok) {
    const detail = check.lockedUntil
      ? `the password is wrong; signing is now locked until ${check.lockedUntil.toISOString()}`
      : `the password is wrong; ${check.remaining} attempt(s) left before signing is locked`;
    throw new Problem(403, 'signature-password-invalid', 'Signature not accepted', detail);
  }
  return { meaning: request.meaning, contentHash: request.contentHash, signedAt: new Date().toISOString() };
}
