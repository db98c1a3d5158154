import type { Config } from '../../common/config';
import { durationMs } from '../../common/durations';

/** The credential policy: signing passwords people set themselves, enrolment tokens, API keys and their alerts. */
export interface CredentialSettings {
  passwordMinLength: number;
  /** How many of a person's latest signing passwords (the current one included) a new one may not repeat. */
  passwordHistory: number;
  enrolmentTokenTtlMs: number;
  /** Where the enrolment email tells people to send their token. */
  enrolmentUrl: string;
  apiKeyDefaultLifetimeMs: number;
  apiKeyMaxLifetimeMs: number;
  apiKeyMaxPerUser: number;
  apiKeyRotationMaxOverlapMs: number;
  failedKeyAlertThreshold: number;
  failedKeyWindowMs: number;
  /** How often a key's last_used_at is written at most, per API process. */
  lastUsedIntervalMs: number;
}

export const DEFAULT_CREDENTIAL_SETTINGS: CredentialSettings = {
  passwordMinLength: 12,
  passwordHistory: 5,
  enrolmentTokenTtlMs: durationMs('72h'),
  enrolmentUrl: 'http://localhost:3000/api/v1/enrolment',
  apiKeyDefaultLifetimeMs: durationMs('90d'),
  apiKeyMaxLifetimeMs: durationMs('365d'),
  apiKeyMaxPerUser: 10,
  apiKeyRotationMaxOverlapMs: durationMs('24h'),
  failedKeyAlertThreshold: 20,
  failedKeyWindowMs: durationMs('10m'),
  lastUsedIntervalMs: 60_000,
};

export function credentialSettings(config: Config): CredentialSettings {
  return {
    passwordMinLength: config.SIGNING_PASSWORD_MIN_LENGTH,
    passwordHistory: config.SIGNING_PASSWORD_HISTORY,
    enrolmentTokenTtlMs: durationMs(config.ENROLMENT_TOKEN_TTL),
    enrolmentUrl: `${config.PUBLIC_URL.replace(/\/+$/, '')}/api/v1/enrolment`,
    apiKeyDefaultLifetimeMs: durationMs(config.API_KEY_DEFAULT_LIFETIME),
    apiKeyMaxLifetimeMs: durationMs(config.API_KEY_MAX_LIFETIME),
    apiKeyMaxPerUser: config.API_KEY_MAX_PER_USER,
    apiKeyRotationMaxOverlapMs: durationMs(config.API_KEY_ROTATION_MAX_OVERLAP),
    failedKeyAlertThreshold: config.API_KEY_FAILURE_ALERT_THRESHOLD,
    failedKeyWindowMs: durationMs(config.API_KEY_FAILURE_WINDOW),
    lastUsedIntervalMs: DEFAULT_CREDENTIAL_SETTINGS.lastUsedIntervalMs,
  };
}
