import { Problem, problems } from './problem';

/** Which check refused a bearer token; clients and operators switch on it. */
export type TokenCheck =
  | 'malformed'
  | 'issuer'
  | 'audience'
  | 'expired'
  | 'not-yet-valid'
  | 'signature'
  | 'algorithm'
  | 'claims'
  | 'username-claim'
  | 'roles-claim'
  | 'unknown-user'
  | 'user-deactivated';

/**
 * 401 naming the failed check (RFC 6750 invalid_token). The detail never quotes the token or its claims, so
 * neither the answer nor a log of it lets anyone replay the token.
 */
export function tokenRefused(check: TokenCheck, detail: string): Problem {
  return new Problem(
    401,
    'invalid-token',
    'The bearer token was refused',
    detail,
    { check },
    { 'WWW-Authenticate': `Bearer realm="labflow", error="invalid_token", error_description="${check}"` },
  );
}

/** The identity provider (discovery document or JWKS) could not be read: nobody's token can be checked. */
export class IdentityProviderUnavailable extends Error {}

export function providerUnavailable(reason: string): Problem {
  return problems.unavailable(`the identity provider cannot be reached to check the token (${reason}); try again shortly`);
}
