import type { JWTPayload } from 'jose';
import type { Role } from '../common/roles';
import type { OidcSettings } from './oidc-settings';

const USERNAME = /^[a-z0-9._-]{2,64}$/;

/** A claim by name; a dotted name reaches into objects (Keycloak's realm_access.roles). */
export function claimAt(payload: JWTPayload, name: string): unknown {
  if (name in payload) return payload[name];
  let value: unknown = payload;
  for (const part of name.split('.')) {
    if (!value || typeof value !== 'object') return undefined;
    value = (value as Record<string, unknown>)[part];
  }
  return value;
}

/**
 * The labflow username a token names: the configured claim (else preferred_username, else sub), lower-cased, with
 * the domain taken off an address in one of OIDC_USERNAME_DOMAINS (alice@lab.example → alice). Undefined when
 * the claim is absent or is not a labflow username (an address in another domain is not one).
 */
export function usernameFrom(payload: JWTPayload, settings: Pick<OidcSettings, 'usernameClaims' | 'usernameDomains'>): string | undefined {
  const value = usernameClaimValue(payload, settings);
  if (value === undefined) return undefined;
  let name = value.toLowerCase();
  const at = name.lastIndexOf('@');
  if (at > 0 && settings.usernameDomains.includes(name.slice(at + 1))) name = name.slice(0, at);
  return USERNAME.test(name) ? name : undefined;
}

function usernameClaimValue(payload: JWTPayload, settings: Pick<OidcSettings, 'usernameClaims'>): string | undefined {
  const value = settings.usernameClaims.map((claim) => claimAt(payload, claim)).find((v) => typeof v === 'string' && v !== '');
  return typeof value === 'string' ? value : undefined;
}

const ADDRESS = /^[^@\s]+@[^@\s]+\.[^@\s]+$/;

/** The person's email address: the email claim, else an address-shaped username claim (Entra ID's UPN). */
export function emailFrom(payload: JWTPayload, settings: Pick<OidcSettings, 'usernameClaims'>): string | undefined {
  return [payload.email, usernameClaimValue(payload, settings)].find((v): v is string => typeof v === 'string' && ADDRESS.test(v) && v.length <= 254);
}

/**
 * The labflow roles the token's groups/roles claim maps to, sorted; groups the map does not name give none.
 * 'overage' when the provider left the groups out because there were too many (Entra ID's _claim_names).
 */
export function rolesFrom(payload: JWTPayload, claim: string, map: Record<string, Role[]>): Role[] | 'overage' {
  const value = claimAt(payload, claim);
  const names = payload._claim_names as Record<string, unknown> | undefined;
  if (value === undefined && names && typeof names === 'object' && claim in names) return 'overage';
  const groups = Array.isArray(value) ? value : typeof value === 'string' ? value.split(/[\s,]+/) : [];
  const roles = new Set<Role>();
  for (const group of groups) if (typeof group === 'string') for (const role of map[group] ?? []) roles.add(role);
  return [...roles].sort();
}
