import type { Context } from 'koa';
import type { Actor, Role } from '../common/roles';
import type { CredentialChange } from '../db/credential-notices';
import { API_KEY_PATTERN, credentialForApiKey, toActor } from '../db/identity';
import type { Db } from '../db/knex';
import { Problem, problems } from './problem';

/**
 * One kind of bearer credential (an API key, an identity provider's token). The authenticator asks each in turn
 * whether the token is of its kind; the first that accepts it decides.
 */
export interface CredentialResolver {
  accepts(token: string): boolean;
  /**
   * The actor, or undefined when the credential is refused. May set ctx.state: the API key's ID, and
   * CREDENTIAL_EXPIRY (when the credential stops being accepted, ms since the epoch) when it has one.
   */
  resolve(token: string, ctx: Context): Promise<Actor | undefined>;
  /** Forgets what it remembers of a user or key (or of everything, after missed notices). */
  invalidate?(change: CredentialChange | 'all'): void;
}

/** ctx.state's key for the instant (ms since the epoch) the request's credential stops being accepted, if it ever does. */
export const CREDENTIAL_EXPIRY = 'credentialExpiresAt';

/** When the credential the request was authenticated with stops being accepted; undefined when it never does. */
export function credentialExpiry(ctx: Context): number | undefined {
  const at: unknown = ctx.state[CREDENTIAL_EXPIRY];
  return typeof at === 'number' && Number.isFinite(at) ? at : undefined;
}

/** A refused bearer token, for counting repeated failures: the client address and, for an API key, its prefix. */
export interface FailedCredential {
  clientIp: string;
  prefix: string | null;
}

export interface Authenticator {
  (ctx: Context): Promise<Actor>;
  invalidate(change: CredentialChange | 'all'): void;
  /**
   * The request's credential resolved again (a long-lived request, as an event stream, asks while it lasts): its
   * actor now, or undefined when it is refused now. A refusal here is not counted as a failed attempt.
   */
  recheck(ctx: Context): Promise<Actor | undefined>;
}

export interface ApiKeyResolverOptions {
  cacheTtlMs: number;
  /** How often a key's last_used_at is written at most by this process; once a minute when absent. */
  lastUsedIntervalMs?: number;
  onError?: (err: unknown) => void;
}

/**
 * API keys (lf_<prefix>_<secret>), checked against their stored hash. A verified key is remembered for a short
 * time (never past its expiry) so that a burst of calls does not hit the database for every request; a notice on
 * the credentials channel makes every process forget a revoked key or a deactivated user's keys at once.
 */
export function apiKeyResolver(db: Db, options: ApiKeyResolverOptions): CredentialResolver {
  const cache = new Map<string, { actor: Actor; keyId: string; prefix: string; expires: number; keyExpiry: number }>();
  const lastWritten = new Map<string, number>();
  const interval = options.lastUsedIntervalMs ?? 60_000;

  async function touch(keyId: string, now: number): Promise<void> {
    if (now - (lastWritten.get(keyId) ?? 0) < interval) return;
    lastWritten.set(keyId, now);
    if (lastWritten.size > 10_000) lastWritten.clear();
    try {
      await db('api_keys')
        .where({ id: keyId })
        .update({ last_used_at: new Date(now) });
    } catch (err) {
      options.onError?.(err);
    }
  }

  return {
    accepts: (token) => token.startsWith('lf_'),
    async resolve(token, ctx) {
      const now = Date.now();
      const hit = cache.get(token);
      if (hit && hit.expires > now) {
        ctx.state.apiKeyId = hit.keyId;
        ctx.state[CREDENTIAL_EXPIRY] = hit.keyExpiry;
        await touch(hit.keyId, now);
        return hit.actor;
      }
      const credential = await credentialForApiKey(db, token);
      if (!credential) {
        cache.delete(token);
        return undefined;
      }
      const actor = toActor(credential.user);
      if (cache.size > 10_000) cache.clear();
      const keyExpiry = credential.expiresAt ? credential.expiresAt.getTime() : Infinity;
      cache.set(token, {
        actor,
        keyId: credential.keyId,
        prefix: credential.prefix,
        expires: Math.min(now + options.cacheTtlMs, keyExpiry),
        keyExpiry,
      });
      ctx.state.apiKeyId = credential.keyId;
      ctx.state[CREDENTIAL_EXPIRY] = keyExpiry;
      await touch(credential.keyId, now);
      return actor;
    },
    invalidate(change) {
      if (change === 'all') {
        cache.clear();
        return;
      }
      for (const [token, entry] of cache) {
        if ('userId' in change ? entry.actor.userId === change.userId : entry.prefix === change.keyPrefix) cache.delete(token);
      }
    },
  };
}

export interface AuthenticatorOptions {
  /** Resolvers tried after the API key resolver (an OpenID Connect one). */
  resolvers?: CredentialResolver[];
  /** Hears of every refused bearer token; must not throw. */
  onFailure?: (failure: FailedCredential) => Promise<void>;
  lastUsedIntervalMs?: number;
  onError?: (err: unknown) => void;
}

/** Resolves bearer credentials to actors with the API key resolver first, then any others given. */
export function createAuthenticator(db: Db, cacheTtlMs: number, options: AuthenticatorOptions = {}): Authenticator {
  const resolvers = [
    apiKeyResolver(db, { cacheTtlMs, lastUsedIntervalMs: options.lastUsedIntervalMs, onError: options.onError }),
    ...(options.resolvers ?? []),
  ];
  const bearer = (ctx: Context) => /^Bearer\s+(\S+)$/i.exec(ctx.get('authorization'))?.[1];
  const resolve = async (token: string, ctx: Context) => {
    const resolver = resolvers.find((r) => r.accepts(token));
    return resolver ? resolver.resolve(token, ctx) : undefined;
  };
  const authenticate = async function authenticate(ctx: Context): Promise<Actor> {
    const token = bearer(ctx);
    if (!token) throw problems.unauthenticated();
    const actor = await resolve(token, ctx);
    if (actor) return actor;
    await options.onFailure?.({ clientIp: ctx.ip, prefix: API_KEY_PATTERN.exec(token)?.[1] ?? null });
    throw problems.unauthenticated();
  } as Authenticator;
  authenticate.recheck = async (ctx) => {
    const token = bearer(ctx);
    if (!token) return undefined;
    try {
      return await resolve(token, ctx);
    } catch (err) {
      // A resolver that refuses by throwing (an expired access token: 401 naming the check) refuses; anything else
      // (the identity provider or the database unreachable) says nothing about the credential and is thrown.
      if (err instanceof Problem && err.status === 401) return undefined;
      throw err;
    }
  };
  authenticate.invalidate = (change) => {
    for (const r of resolvers) r.invalidate?.(change);
  };
  return authenticate;
}

/**
 * The caller holds one of the roles; admin passes too unless `adminPasses` is false (records a person signs for a
 * role's responsibility: reference ranges, autoverification rules, competence and authorisations).
 */
export function requireRole(actor: Actor, roles: readonly Role[] | 'any', adminPasses = true): void {
  if (roles === 'any' || (adminPasses && actor.roles.includes('admin')) || roles.some((r) => actor.roles.includes(r))) return;
  throw problems.forbidden(`this needs one of the roles: ${roles.join(', ')}`);
}
