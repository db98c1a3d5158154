import type { Context } from 'koa';
import type { Actor, Role } from '../common/roles';
import { toActor, userForApiKey } from '../db/identity';
import type { Db } from '../db/knex';
import { looksLikeJwt } from './oidc';
import { problems } from './problem';

/**
 * Resolves bearer API keys to actors. Keys are checked against their stored hash; a verified key is remembered
 * for a short time so that a burst of calls does not hit the database for every request. Revoking a key or
 * deactivating a user takes effect within that time.
 */
export function createAuthenticator(db: Db, cacheTtlMs: number, oidc?: (token: string) => Promise<Actor>) {
  const cache = new Map<string, { actor: Actor; expires: number }>();
  return async function authenticate(ctx: Context): Promise<Actor> {
    const header = ctx.get('authorization');
    const match = /^Bearer\s+(\S+)$/i.exec(header);
    if (!match) throw problems.unauthenticated();
    const key = match[1];
    // Not an lf_ key but a JWT: an OpenID Connect access token, checked by api/oidc.ts on every request.
    if (oidc && looksLikeJwt(key)) return oidc(key);
    const now = Date.now();
    const hit = cache.get(key);
    if (hit && hit.expires > now) return hit.actor;
    const user = await userForApiKey(db, key);
    if (!user) {
      cache.delete(key);
      throw problems.unauthenticated();
    }
    const actor = toActor(user);
    if (cache.size > 10_000) cache.clear();
    cache.set(key, { actor, expires: now + cacheTtlMs });
    return actor;
  };
}

export function requireRole(actor: Actor, roles: readonly Role[] | 'any'): void {
  if (roles === 'any' || actor.roles.includes('admin') || roles.some((r) => actor.roles.includes(r))) return;
  throw problems.forbidden(`this needs one of the roles: ${roles.join(', ')}`);
}
