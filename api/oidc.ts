import { decodeJwt, errors, jwtVerify, type JWTPayload } from 'jose';
import { CREDENTIAL_EXPIRY, type CredentialResolver } from './auth';
import type { Actor } from '../common/roles';
import { toActor } from '../db/identity';
import type { Db } from '../db/knex';
import { userForToken } from '../db/oidc-users';
import type { Logger } from '../platform/logger';
import { emailFrom, rolesFrom, usernameFrom } from './oidc-claims';
import { IdentityProviderUnavailable, providerUnavailable, tokenRefused, type TokenCheck } from './oidc-errors';
import { providerKeys } from './oidc-keys';
import type { OidcSettings } from './oidc-settings';

/** Asymmetric algorithms only: a provider's published key set never holds a shared secret. */
const ALGORITHMS = ['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'ES256', 'ES384', 'ES512', 'EdDSA', 'Ed25519'];

/** A compact JWS (three base64url parts, the header starting with '{"'), as opposed to an lf_ API key. */
export function looksLikeJwt(bearer: string): boolean {
  return /^eyJ[A-Za-z0-9_-]*\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/.test(bearer);
}

const REFUSALS = {
  'unknown-user': (username: string) => `the token names ${username}, who is not a labflow user`,
  'user-deactivated': (username: string) => `${username} is deactivated`,
  // Notifications go by email: a user made without an address could never be told of their work.
  claims: (username: string) => `${username} is not a labflow user yet, and the token carries no email address to create them with`,
} as const;

export interface OidcDeps {
  log: Logger;
  /** The domain of the Message-IDs of emails queued here (QA told of roles a token changed). */
  mailDomain?: string;
  /** Starts the delivery of emails queued in the outbox (api/temporal/notifications.ts); they wait for the next sweep when absent. */
  deliverEmails?: (key: string, outboxIds: string[]) => Promise<void>;
  /** The time tokens are judged at; the system clock when absent. */
  now?: () => Date;
}

/**
 * Checks an OpenID Connect access token (issuer, signature against the provider's key set, audience, expiry and
 * not-before within the clock tolerance) and resolves it to the labflow user it names. Refusals are 401 naming the
 * check; an unreachable provider is 503. The token itself is never logged.
 */
export function createOidcAuthenticator(db: Db, settings: OidcSettings, deps: OidcDeps): (token: string) => Promise<Actor> {
  const keys = providerKeys(settings);
  const now = deps.now ?? (() => new Date());

  const refuse = (check: TokenCheck, detail: string) => {
    deps.log.info({ check }, 'bearer token refused');
    return tokenRefused(check, detail);
  };

  async function verify(token: string): Promise<JWTPayload> {
    let claimed: JWTPayload;
    try {
      claimed = decodeJwt(token);
    } catch {
      throw refuse('malformed', 'the bearer token is not a well-formed JWT');
    }
    // Refused before anything is fetched: a token from elsewhere must not make labflow call its issuer.
    if (claimed.iss !== settings.issuer) throw refuse('issuer', 'the token was not issued by the identity provider labflow trusts (OIDC_ISSUER)');
    const currentDate = now();
    try {
      const { payload } = await jwtVerify(token, keys, {
        issuer: settings.issuer,
        audience: settings.audiences,
        clockTolerance: settings.clockToleranceSeconds,
        algorithms: ALGORITHMS,
        // A token without an expiry would be good for ever.
        requiredClaims: ['exp'],
        currentDate,
      });
      if (typeof payload.iat === 'number' && payload.iat > currentDate.getTime() / 1000 + settings.clockToleranceSeconds) {
        throw refuse('not-yet-valid', 'the token was issued in the future (check the clocks)');
      }
      return payload;
    } catch (err) {
      throw refusal(err);
    }
  }

  function refusal(err: unknown): unknown {
    if (err instanceof IdentityProviderUnavailable) {
      deps.log.warn({ reason: err.message }, 'identity provider unavailable');
      return providerUnavailable(err.message);
    }
    if (err instanceof errors.JWTExpired) return refuse('expired', 'the token has expired');
    if (err instanceof errors.JWTClaimValidationFailed) {
      if (err.claim === 'aud') return refuse('audience', `the token is not meant for labflow (its audience is not OIDC_AUDIENCE)`);
      if (err.claim === 'iss') return refuse('issuer', 'the token was not issued by the identity provider labflow trusts (OIDC_ISSUER)');
      if (err.claim === 'nbf' || err.claim === 'iat') return refuse('not-yet-valid', 'the token is not valid yet (not-before is in the future)');
      return refuse('claims', `the token's ${err.claim} claim is not acceptable`);
    }
    if (err instanceof errors.JWKSNoMatchingKey || err instanceof errors.JWSSignatureVerificationFailed) {
      return refuse('signature', "the token's signature does not verify against the identity provider's published keys");
    }
    if (err instanceof errors.JOSEAlgNotAllowed || err instanceof errors.JOSENotSupported) {
      return refuse('algorithm', "the token's signing algorithm is not accepted");
    }
    if (err instanceof errors.JWSInvalid || err instanceof errors.JWTInvalid) return refuse('malformed', 'the bearer token is not a well-formed JWT');
    return err;
  }

  return async function authenticateToken(token: string): Promise<Actor> {
    const payload = await verify(token);
    const username = usernameFrom(payload, settings);
    if (!username) {
      throw refuse('username-claim', `the token's ${settings.usernameClaims.join(' or ')} claim does not name a labflow username`);
    }
    let roles;
    if (settings.rolesClaim) {
      roles = rolesFrom(payload, settings.rolesClaim, settings.roleMap);
      if (roles === 'overage') {
        throw refuse('roles-claim', `the token leaves out the ${settings.rolesClaim} claim (too many groups); have the provider send app roles or filtered groups`);
      }
    }
    const found = await userForToken(
      db,
      {
        issuer: settings.issuer,
        username,
        roles,
        printedName: typeof payload.name === 'string' ? payload.name.slice(0, 120) : undefined,
        email: emailFrom(payload, settings),
      },
      settings.jit,
      deps.mailDomain,
    );
    if ('refused' in found) throw refuse(found.refused, REFUSALS[found.refused](username));
    if (found.outboxIds?.length) await deps.deliverEmails?.(`user-roles-synced:${found.user.id}:${Date.now()}`, found.outboxIds);
    return toActor(found.user);
  };
}

/** Single sign-on as one of the authenticator's credential kinds (api/auth.ts): JWTs, checked on every request. */
export function oidcResolver(db: Db, settings: OidcSettings, deps: OidcDeps): CredentialResolver {
  const check = createOidcAuthenticator(db, settings, deps);
  return {
    accepts: looksLikeJwt,
    async resolve(token, ctx) {
      const actor = await check(token);
      // Verified, so exp is there; the token is accepted until the clock tolerance past it has gone by.
      const { exp } = decodeJwt(token);
      if (typeof exp === 'number') ctx.state[CREDENTIAL_EXPIRY] = (exp + settings.clockToleranceSeconds) * 1000;
      return actor;
    },
  };
}
