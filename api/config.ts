import { ConfigError, type Config } from '../common/config';
import { durationMs } from '../common/durations';
import { configuredLlmProviders } from '../common/llm-providers';
import { parseRoleMap } from '../common/oidc-role-map';
import { webhookSettings } from '../common/webhook-delivery';
import { mailDomainOf } from '../platform/mail-domain';
import { credentialSettings } from './credentials/settings';
import type { ApiConfig, SummarySettings } from './deps';
import type { OidcSettings } from './oidc-settings';

export function apiConfig(config: Config): ApiConfig {
  return {
    taskQueue: config.TEMPORAL_TASK_QUEUE,
    bodyLimitBytes: config.API_BODY_LIMIT_BYTES,
    apiKeyCacheTtlMs: durationMs(config.API_KEY_CACHE_TTL),
    signing: {
      maxFailures: config.SIGNING_MAX_FAILURES,
      failureWindowMs: durationMs(config.SIGNING_FAILURE_WINDOW),
      lockMs: durationMs(config.SIGNING_LOCK),
      maxAgeMs: durationMs(config.SIGNING_PASSWORD_MAX_AGE),
    },
    actionGrantTtlMs: durationMs(config.ACTION_GRANT_TTL),
    documentDefaults: {
      stageDue: config.DOC_STAGE_DUE,
      reminderBefore: config.DOC_REMINDER_BEFORE,
      periodicReview: config.DOC_PERIODIC_REVIEW,
    },
    codecCorsOrigins: codecCorsOrigins(config),
    summary: summarySettings(config),
    mailDomain: mailDomainOf(config.MAIL_FROM),
    credentials: credentialSettings(config),
    rateLimits: {
      windowMs: durationMs(config.RATE_LIMIT_WINDOW),
      points: config.RATE_LIMIT_POINTS,
      ipPoints: config.RATE_LIMIT_IP_POINTS,
      concurrent: config.RATE_LIMIT_CONCURRENT,
      signingWindowMs: durationMs(config.RATE_LIMIT_SIGNING_WINDOW),
      signingPoints: config.RATE_LIMIT_SIGNING_POINTS,
      signingIpPoints: config.RATE_LIMIT_SIGNING_IP_POINTS,
    },
    corsOrigins: config.CORS_ORIGINS ? config.CORS_ORIGINS.split(',').map((o) => new URL(o.trim()).origin) : [],
    trustedProxies: config.TRUSTED_PROXIES,
    backfillMaxWindowMs: durationMs(config.SCHEDULE_BACKFILL_MAX_WINDOW),
    webhooks: webhookSettings(config),
    publicUrl: config.PUBLIC_URL,
    notifications: { slackUrlPrefixes: config.SLACK_WEBHOOK_URL_PREFIXES.split(',').map((p) => p.trim()).filter(Boolean) },
    competency: {
      firstYearIntervalMs: durationMs(config.COMPETENCY_FIRST_YEAR_INTERVAL),
      firstYearAssessments: config.COMPETENCY_FIRST_YEAR_ASSESSMENTS,
      intervalMs: durationMs(config.COMPETENCY_INTERVAL),
    },
    streams: {
      heartbeatMs: durationMs(config.STREAM_HEARTBEAT_INTERVAL),
      maxPerUser: config.STREAM_MAX_PER_USER,
      maxPerProcess: config.STREAM_MAX_PER_PROCESS,
      maxBufferedBytes: config.STREAM_MAX_BUFFERED_BYTES,
    },
    bulkExports: { maxRecords: config.BULK_EXPORT_MAX_RECORDS, retentionMs: durationMs(config.BULK_EXPORT_RETENTION) },
    bookings: {
      approvalDeadline: config.BOOKING_APPROVAL_DEADLINE,
      checkInBefore: config.BOOKING_CHECK_IN_BEFORE,
      noShowGrace: config.BOOKING_NO_SHOW_GRACE,
      checkOutGrace: config.BOOKING_CHECK_OUT_GRACE,
    },
  };
}

/**
 * The activity's own bound on one provider call: the client's timeout (LLM_TIMEOUT, OLLAMA_TIMEOUT), which is what
 * gives up on a silent provider, plus time to record the outcome. Were the two equal, Temporal would time the
 * attempt out first and try it again while the first was still recording its own timeout.
 */
const RECORDING_MARGIN_MS = 30_000;
const withRecordingMargin = (clientTimeout: string) => `${Math.ceil((durationMs(clientTimeout) + RECORDING_MARGIN_MS) / 1000)}s`;

/** Providers without credentials (or, for Ollama, a host) are left out: asking them could only fail. */
export function summarySettings(config: Config): SummarySettings {
  const providers = configuredLlmProviders(config).order;
  return {
    providers,
    extractiveFallback: config.SUMMARY_EXTRACTIVE_FALLBACK !== false,
    attempt: {
      timeout: withRecordingMargin(config.LLM_TIMEOUT),
      maxAttempts: config.LLM_MAX_ATTEMPTS,
      maxTokens: config.LLM_MAX_TOKENS,
      maxRetryAfter: config.LLM_MAX_RETRY_AFTER,
    },
    timeouts: { ollama: withRecordingMargin(config.OLLAMA_TIMEOUT) },
    maxRounds: config.SUMMARY_MAX_ROUNDS,
    maxWaitMs: durationMs(config.SUMMARY_MAX_WAIT),
    dailyTokenBudget: config.LLM_DAILY_TOKEN_BUDGET,
  };
}

const LOOPBACK = ['localhost', '127.0.0.1'];

/**
 * CODEC_CORS_ORIGINS, else the Web UI's own origin. A loopback UI is reachable as localhost and as 127.0.0.1 (the
 * dev server reports the latter, people type the former), so both are allowed.
 */
export function codecCorsOrigins(config: Pick<Config, 'CODEC_CORS_ORIGINS' | 'TEMPORAL_UI_URL'>): string[] {
  if (config.CODEC_CORS_ORIGINS) return config.CODEC_CORS_ORIGINS.split(',').map((o) => new URL(o.trim()).origin);
  let ui: URL;
  try {
    ui = new URL(config.TEMPORAL_UI_URL);
  } catch {
    return [];
  }
  if (!LOOPBACK.includes(ui.hostname)) return [ui.origin];
  return LOOPBACK.map((host) => {
    const alias = new URL(ui.origin);
    alias.hostname = host;
    return alias.origin;
  });
}

const list = (value: string | undefined) =>
  (value ?? '')
    .split(',')
    .map((v) => v.trim())
    .filter(Boolean);

/** The OIDC settings, or undefined when OIDC_ISSUER is not set (single sign-on off). */
export function oidcSettings(config: Config): OidcSettings | undefined {
  if (!config.OIDC_ISSUER) return undefined;
  const audiences = list(config.OIDC_AUDIENCE);
  if (!audiences.length) throw new ConfigError('invalid configuration:\n  OIDC_AUDIENCE: required when OIDC_ISSUER is set');
  const roleMap = parseRoleMap(config.OIDC_ROLE_MAP);
  if ('problem' in roleMap) throw new ConfigError(`invalid configuration:\n  OIDC_ROLE_MAP: ${roleMap.problem}`);
  return {
    issuer: config.OIDC_ISSUER,
    audiences,
    clockToleranceSeconds: Math.round(durationMs(config.OIDC_CLOCK_TOLERANCE) / 1000),
    usernameClaims: config.OIDC_USERNAME_CLAIM ? [config.OIDC_USERNAME_CLAIM] : ['preferred_username', 'sub'],
    usernameDomains: list(config.OIDC_USERNAME_DOMAINS).map((d) => d.toLowerCase()),
    rolesClaim: config.OIDC_ROLES_CLAIM || undefined,
    roleMap: roleMap.map,
    jit: config.OIDC_JIT === true,
    httpTimeoutMs: durationMs(config.OIDC_HTTP_TIMEOUT),
  };
}
