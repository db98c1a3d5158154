import type { Role } from '../common/roles';

/** How the API checks OpenID Connect bearer tokens (api/oidc.ts). */
export interface OidcSettings {
  /** The identity provider's issuer identifier; its discovery document is at <issuer>/.well-known/openid-configuration. */
  issuer: string;
  /** Audiences a token may carry (any one suffices). */
  audiences: string[];
  clockToleranceSeconds: number;
  /** Claims tried in turn for the username. */
  usernameClaims: string[];
  /** Domains taken off an email-shaped username (alice@lab.example → alice). */
  usernameDomains: string[];
  /** The claim holding groups or roles; absent: roles are managed in labflow, not by the provider. */
  rolesClaim?: string;
  roleMap: Record<string, Role[]>;
  /** Create a user on their first valid token (just-in-time). */
  jit: boolean;
  /** Bound on each call to the provider (discovery, JWKS). */
  httpTimeoutMs: number;
}
