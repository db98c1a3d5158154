import { z } from 'zod';
import { durationProblem, parseDuration } from './durations';
import { parseChain } from './notification-chain';
import { parseRoleMap } from './oidc-role-map';
import { DEFAULT_TASK_QUEUE } from './task-queues';

/** Zero is allowed (it turns a cache or a wait off); like every duration labflow takes, at most ten years. */
const duration = z.string().superRefine((value, ctx) => {
  const problem = durationProblem(value, { allowZero: true });
  if (problem) ctx.addIssue({ code: 'custom', message: problem });
});
/** A duration that cannot be turned off: a token, a key's life, a counting window or a cap of zero would be meaningless. */
const positiveDuration = duration.refine((value) => parseDuration(value) !== 0, 'must be longer than zero');
const flag = z
  .enum(['true', 'false', '1', '0', 'yes', 'no', 'auto', 'never'])
  .transform((v) => (v === 'auto' ? 'auto' : ['true', '1', 'yes'].includes(v)));
const port = z.coerce.number().int().min(0).max(65535);
const origins = z
  .string()
  .refine(
    (v) => v.split(',').every((o) => /^https?:\/\/[^/\s]+$/.test(o.trim())),
    'expected a comma-separated list of origins such as https://lims.lab.example',
  );
const count = (min: number) => z.coerce.number().int().min(min).max(Number.MAX_SAFE_INTEGER);

/**
 * Every environment variable labflow reads, with its default. The README's configuration table mirrors this
 * schema, and a test checks that docker-compose.yml sets nothing that is not here.
 */
export const configSchema = z.object({
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  LOG_PRETTY: flag.default('auto'),
  DATA_DIR: z.string().default('.data'),

  DATABASE_URL: z.string().default('postgres://postgres@127.0.0.1:5432/labflow'),
  MIGRATION_DATABASE_URL: z.string().optional(),
  BACKUP_DATABASE_URL: z.string().optional(),
  DATABASE_ADMIN_URL: z.string().optional(),
  DATABASE_POOL_MAX: z.coerce.number().int().min(1).default(10),
  DATABASE_SSLMODE: z.enum(['disable', 'prefer', 'require', 'verify-ca', 'verify-full']).optional(),
  DATABASE_SSL_CA_FILE: z.string().optional(),
  PRIVATE_PG: flag.default('auto'),
  PRIVATE_PG_PORT: port.default(5433),

  TEMPORAL_ADDRESS: z.string().default('127.0.0.1:7233'),
  TEMPORAL_NAMESPACE: z.string().default('default'),
  TEMPORAL_TASK_QUEUE: z.string().default(DEFAULT_TASK_QUEUE),
  TEMPORAL_DEV_SERVER: flag.default('auto'),
  TEMPORAL_UI_PORT: port.default(8233),
  TEMPORAL_UI_URL: z.string().default('http://localhost:8233'),
  // The Web UI server of `npm run start:cluster` (scripts/lib/temporal-ui.ts): sign-in with the lab's identity
  // provider (OIDC_ISSUER) when a client is given; without one it listens on loopback only.
  TEMPORAL_UI_HOST: z.string().default('127.0.0.1'),
  TEMPORAL_UI_OIDC_CLIENT_ID: z.string().min(1).optional(),
  TEMPORAL_UI_OIDC_CLIENT_SECRET: z.string().min(1).optional(),
  TEMPORAL_UI_OIDC_SCOPES: z.string().default('openid profile email'),
  TEMPORAL_UI_MAX_SESSION: positiveDuration.default('8h'),
  TEMPORAL_CLI: z.string().optional(),
  // mTLS to the Temporal frontend (platform/temporal-connection.ts): on when a CA or a client certificate is given.
  TEMPORAL_TLS_CA_FILE: z.string().optional(),
  TEMPORAL_TLS_CERT_FILE: z.string().optional(),
  TEMPORAL_TLS_KEY_FILE: z.string().optional(),
  TEMPORAL_TLS_SERVER_NAME: z.string().optional(),
  PAYLOAD_KEYS: z.string().optional(),
  PAYLOAD_KEYS_FILE: z.string().optional(),
  PAYLOAD_ALLOW_CLEAR: flag.default(false),
  CODEC_CORS_ORIGINS: origins.optional(),

  API_HOST: z.string().default('127.0.0.1'),
  API_PORT: port.default(3000),
  API_BODY_LIMIT_BYTES: z.coerce.number().int().min(1024).default(1_048_576),
  PUBLIC_URL: z.string().default('http://localhost:3000'),
  // The laboratory as its test reports print it (42 CFR 493.1291(c)(2)).
  LAB_NAME: z.string().min(1).max(200).default('labflow laboratory'),
  LAB_ADDRESS: z.string().max(500).default(''),
  API_KEY_CACHE_TTL: duration.default('30s'),
  // Hardening of the HTTP API (api/hardening/): proxies, browsers, TLS, rate limits.
  TRUSTED_PROXIES: z.coerce.number().int().min(0).max(10).default(0),
  CORS_ORIGINS: origins.optional(),
  TLS_CERT_FILE: z.string().optional(),
  TLS_KEY_FILE: z.string().optional(),
  RATE_LIMIT_WINDOW: positiveDuration.default('60s'),
  RATE_LIMIT_POINTS: count(1).default(100),
  RATE_LIMIT_IP_POINTS: count(1).default(300),
  RATE_LIMIT_CONCURRENT: count(1).default(10),
  RATE_LIMIT_SIGNING_WINDOW: positiveDuration.default('15m'),
  RATE_LIMIT_SIGNING_POINTS: count(1).default(20),
  RATE_LIMIT_SIGNING_IP_POINTS: count(1).default(200),

  // Single sign-on (api/oidc.ts): off unless OIDC_ISSUER is set.
  OIDC_ISSUER: z.url({ protocol: /^https?$/ }).optional(),
  OIDC_AUDIENCE: z.string().optional(),
  OIDC_CLOCK_TOLERANCE: duration.default('30s'),
  OIDC_USERNAME_CLAIM: z.string().optional(),
  OIDC_USERNAME_DOMAINS: z.string().optional(),
  OIDC_ROLES_CLAIM: z.string().optional(),
  OIDC_ROLE_MAP: z
    .string()
    .superRefine((value, ctx) => {
      const parsed = parseRoleMap(value);
      if ('problem' in parsed) ctx.addIssue({ code: 'custom', message: parsed.problem });
    })
    .default('{}'),
  OIDC_JIT: flag.default(false),
  OIDC_HTTP_TIMEOUT: duration.default('5s'),

  WORKER_METRICS_PORT: port.default(9464),
  WORKFLOW_BUNDLE_PATH: z.string().optional(),
  // The worker's sticky cache: runs kept in memory between their tasks; absent, the SDK sizes it from the heap limit.
  WORKER_MAX_CACHED_WORKFLOWS: count(2).optional(),
  // Worker versioning (platform/worker-deployment.ts): both or neither.
  WORKER_DEPLOYMENT_NAME: z
    .string()
    .regex(/^[A-Za-z0-9._-]{1,100}$/, 'letters, digits, dot, dash, underscore')
    .optional(),
  WORKER_BUILD_ID: z
    .string()
    .regex(/^[A-Za-z0-9._-]{1,100}$/, 'letters, digits, dot, dash, underscore')
    .optional(),
  SCHEDULES: flag.default(true),

  SMTP_URL: z.string().optional(),
  SMTP_TLS: z.enum(['auto', 'starttls', 'implicit']).default('auto'),
  SMTP_TLS_CA_FILE: z.string().optional(),
  MAIL_FROM: z.string().default('labflow <labflow@localhost>'),

  SEED_DEV_USERS: flag.default('auto'),
  SIGNING_MAX_FAILURES: z.coerce.number().int().min(1).default(5),
  SIGNING_FAILURE_WINDOW: duration.default('15m'),
  SIGNING_LOCK: duration.default('30m'),
  ACTION_GRANT_TTL: duration.default('5m'),
  SIGNING_PASSWORD_MIN_LENGTH: z.coerce.number().int().min(8).max(128).default(12),
  SIGNING_PASSWORD_HISTORY: z.coerce.number().int().min(0).max(24).default(5),
  SIGNING_PASSWORD_MAX_AGE: duration.default('90d'),
  ENROLMENT_TOKEN_TTL: positiveDuration.default('72h'),
  API_KEY_DEFAULT_LIFETIME: positiveDuration.default('90d'),
  API_KEY_MAX_LIFETIME: positiveDuration.default('365d'),
  API_KEY_MAX_PER_USER: z.coerce.number().int().min(1).max(100).default(10),
  API_KEY_ROTATION_MAX_OVERLAP: duration.default('24h'),
  API_KEY_FAILURE_ALERT_THRESHOLD: z.coerce.number().int().min(1).default(20),
  API_KEY_FAILURE_WINDOW: positiveDuration.default('10m'),

  DOC_STAGE_DUE: duration.default('72h'),
  DOC_REMINDER_BEFORE: duration.default('24h'),
  DOC_PERIODIC_REVIEW: duration.default('365d'),
  COMPETENCY_FIRST_YEAR_INTERVAL: positiveDuration.default('182d'),
  COMPETENCY_FIRST_YEAR_ASSESSMENTS: z.coerce.number().int().min(0).max(12).default(2),
  COMPETENCY_INTERVAL: positiveDuration.default('365d'),
  BOOKING_APPROVAL_DEADLINE: positiveDuration.default('24h'),
  BOOKING_CHECK_IN_BEFORE: duration.default('15m'),
  BOOKING_NO_SHOW_GRACE: positiveDuration.default('15m'),
  BOOKING_CHECK_OUT_GRACE: duration.default('15m'),

  ERP_URL: z.string().optional(),
  ERP_API_KEY: z.string().optional(),
  ERP_API_SECRET: z.string().optional(),
  ERP_TIME_ZONE: z.string().default('UTC'),
  ERP_RATE_LIMIT: z.coerce.number().positive().default(10),
  ERP_TIMEOUT: duration.default('30s'),
  ERP_PAGE_SIZE: z.coerce.number().int().min(1).max(10000).default(500),

  LLM_PROVIDERS: z
    .string()
    .refine(
      (v) => v.split(',').every((p) => ['anthropic', 'openai', 'ollama'].includes(p.trim())),
      'expected a comma-separated list of anthropic, openai, ollama',
    )
    .default('anthropic,openai,ollama'),
  ANTHROPIC_API_KEY: z.string().optional(),
  ANTHROPIC_BASE_URL: z.string().optional(),
  ANTHROPIC_MODEL: z.string().default('claude-sonnet-4-6'),
  OPENAI_API_KEY: z.string().optional(),
  OPENAI_BASE_URL: z.string().optional(),
  OPENAI_MODEL: z.string().default('gpt-4.1'),
  OLLAMA_HOST: z.string().optional(),
  OLLAMA_MODEL: z.string().default('llama3.1:8b'),
  OLLAMA_NUM_CTX: z.coerce.number().int().min(2048).default(16384),
  LLM_TIMEOUT: duration.default('60s'),
  OLLAMA_TIMEOUT: duration.default('180s'),
  LLM_MAX_TOKENS: z.coerce.number().int().min(256).default(2048),
  LLM_MAX_ATTEMPTS: z.coerce.number().int().min(1).max(10).default(3),
  LLM_MAX_RETRY_AFTER: duration.default('30s'),
  LLM_CIRCUIT_FAILURES: z.coerce.number().int().min(1).default(5),
  LLM_CIRCUIT_COOLDOWN: duration.default('5m'),

  LAB_TIMEZONE: z.string().default('UTC'),
  BACKUP_DIR: z.string().default('.data/backups'),
  BACKUP_OFFSITE_DIR: z.string().optional(),
  BACKUP_COMPRESSION: z.coerce.number().int().min(0).max(9).default(1),
  BACKUP_ENCRYPTION_KEY_FILE: z.string().optional(),
  BACKUP_SIZE_BAND: z.coerce.number().min(1).default(50),
  BACKUP_KEEP_DAILY: z.coerce.number().int().min(1).default(7),
  BACKUP_KEEP_WEEKLY: z.coerce.number().int().min(0).default(4),
  BACKUP_KEEP_MONTHLY: z.coerce.number().int().min(0).default(12),
  BACKUP_PG_USER: z.string().optional(),
  AUDIT_CHAIN_KEY_FILE: z.string().optional(),

  SUMMARY_EXTRACTIVE_FALLBACK: flag.default(true),
  SUMMARY_MAX_ROUNDS: z.coerce.number().int().min(1).max(10).default(3),
  SUMMARY_MAX_WAIT: duration.default('30s'),
  LLM_DAILY_TOKEN_BUDGET: count(1).default(200_000),
  SCHEDULE_BACKFILL_MAX_WINDOW: positiveDuration.default('7d'),

  // Outbound webhooks (docs/events.md): SSRF allowlist, retries, the failure period that disables a subscription.
  WEBHOOK_ALLOWED_HOSTS: z.string().default(''),
  WEBHOOK_RETRY_INITIAL: positiveDuration.default('30s'),
  WEBHOOK_RETRY_MAX_INTERVAL: positiveDuration.default('2h'),
  WEBHOOK_RETRY_FOR: positiveDuration.default('3d'),
  WEBHOOK_REQUEST_TIMEOUT: positiveDuration.default('15s'),
  WEBHOOK_POLL_INTERVAL: positiveDuration.default('5m'),
  WEBHOOK_SECRET_OVERLAP: duration.default('24h'),
  WEBHOOK_DISABLE_AFTER: positiveDuration.default('5d'),

  // Notifications (docs/notifications.md): Slack and SMS channels, urgent escalation, delivery retries.
  SLACK_WEBHOOK_URL_PREFIXES: z
    .string()
    .refine((v) => v.split(',').every((p) => /^https?:\/\/[^/\s]+\/\S*$/.test(p.trim())), 'expected a comma-separated list of URL prefixes')
    .default('https://hooks.slack.com/services/'),
  TWILIO_ACCOUNT_SID: z.string().regex(/^AC[0-9a-fA-F]{32}$/, 'a Twilio account SID: AC and 32 hex digits').optional(),
  TWILIO_AUTH_TOKEN: z.string().optional(),
  TWILIO_FROM_NUMBER: z.string().regex(/^\+[1-9][0-9]{6,14}$/, 'an E.164 number such as +15005550006').optional(),
  TWILIO_API_URL: z.url({ protocol: /^https?$/ }).default('https://api.twilio.com'),
  NOTIFY_ACK_TIMEOUT: positiveDuration.default('15m'),
  NOTIFY_ESCALATION_CHAIN: z
    .string()
    .refine((v) => parseChain(v) !== null, 'expected a comma-separated list of role:<role> and user:<username>')
    .default('role:qa_manager,role:admin'),
  NOTIFY_RETRY_INITIAL: positiveDuration.default('10s'),
  NOTIFY_RETRY_MAX_INTERVAL: positiveDuration.default('10m'),
  NOTIFY_RETRY_FOR: positiveDuration.default('24h'),
  NOTIFY_REQUEST_TIMEOUT: positiveDuration.default('10s'),
  // Critical-value calls (docs/results.md "Critical values"): failed attempts, or time, before the lab director is called in.
  CRITICAL_CALL_MAX_ATTEMPTS: count(1).default(3),
  CRITICAL_CALL_DEADLINE: positiveDuration.default('30m'),
  // Live updates over Server-Sent Events (GET /api/v1/stream, docs/events.md).
  STREAM_HEARTBEAT_INTERVAL: positiveDuration.default('15s'),
  STREAM_MAX_PER_USER: count(1).default(5),
  STREAM_MAX_PER_PROCESS: count(1).default(1000),
  STREAM_MAX_BUFFERED_BYTES: count(4096).default(1_048_576),
  // Bulk exports (docs/exports.md): the most records one export may hold; a larger selection is refused 422.
  BULK_EXPORT_MAX_RECORDS: count(1).default(500),
  // How long a bulk export's file is kept after it was written; then it is deleted and the export marked expired.
  BULK_EXPORT_RETENTION: positiveDuration.default('7d'),
});

export type Config = z.infer<typeof configSchema>;

/**
 * The PostgreSQL roles labflow connects as, one per duty (least privilege), and how configuration names them:
 *
 * - `DATABASE_URL`: the application role the API and the worker connect as. It reads and writes business rows but
 *   cannot alter tables, disable triggers, or update or delete append-only records (audit events, custody events,
 *   signatures and their voids, ...: db/privileges.ts). When its user is `postgres` (the local default,
 *   `postgres://postgres@127.0.0.1:5432/labflow`), the URL names only the server and the database: it serves as
 *   the admin connection below, and the application connects as `<database>_app` with the same password.
 * - `MIGRATION_DATABASE_URL`: the owner role that runs migrations and owns every table. Default: DATABASE_URL with
 *   the user `<database>_owner` (same password).
 * - `BACKUP_DATABASE_URL`: the read-only role pg_dump runs as; it may also create (and so own and drop) the scratch
 *   databases of the restore drill, never write labflow's own. Default: DATABASE_URL with the user
 *   `<database>_backup` (same password). BACKUP_PG_USER, when set, still overrides its user for pg_dump.
 * - `DATABASE_ADMIN_URL`: a superuser that `npm start`, `npm run migrate` and the test harness use to create the
 *   database and the three roles (each with the password of its URL), hand every labflow object to the owner role,
 *   and make the owner the database's owner. Default: DATABASE_URL when its user is `postgres`, else DATABASE_URL
 *   with the user `postgres` and no password. Setting it up is idempotent, so an existing database made by an earlier
 *   version is moved onto the roles at the next start. Where it cannot connect (roles made by a DBA), setup is
 *   skipped and migrations run as the owner. The API and the worker never use it.
 *
 * On a private cluster (PRIVATE_PG) every URL is derived from DATABASE_URL rewritten to the cluster.
 */
export interface DatabaseUrls {
  app: string;
  owner: string;
  backup: string;
  admin: string;
}

const BOOTSTRAP_SUPERUSER = 'postgres';

/** The URL with another user (and, when given, another password). */
export function databaseUrlAs(databaseUrl: string, user: string, password?: string): string {
  const url = new URL(databaseUrl);
  url.username = encodeURIComponent(user);
  if (password !== undefined) url.password = password === '' ? '' : encodeURIComponent(password);
  return url.toString();
}

/** The role names of a database by convention: `<database>_owner`, `<database>_app`, `<database>_backup`. */
export function conventionalRoleNames(databaseUrl: string): { owner: string; app: string; backup: string } {
  const database = decodeURIComponent(new URL(databaseUrl).pathname.replace(/^\//, '')) || 'labflow';
  return { owner: `${database}_owner`, app: `${database}_app`, backup: `${database}_backup` };
}

export function userOf(databaseUrl: string): string {
  return decodeURIComponent(new URL(databaseUrl).username);
}

type DatabaseTls = Partial<Pick<Config, 'DATABASE_SSLMODE' | 'DATABASE_SSL_CA_FILE'>>;

/**
 * The URL with DATABASE_SSLMODE and DATABASE_SSL_CA_FILE as its `sslmode` and `sslrootcert` parameters, unless the
 * URL names its own: what a URL says wins. The modes mean what they mean to libpq (db/postgres-tls.ts), so pg_dump
 * and the API read the same URL alike.
 */
export function withDatabaseTls(databaseUrl: string, tls: DatabaseTls): string {
  if (!tls.DATABASE_SSLMODE && !tls.DATABASE_SSL_CA_FILE) return databaseUrl;
  const url = new URL(databaseUrl);
  if (tls.DATABASE_SSLMODE && !url.searchParams.has('sslmode')) url.searchParams.set('sslmode', tls.DATABASE_SSLMODE);
  if (tls.DATABASE_SSL_CA_FILE && !url.searchParams.has('sslrootcert')) url.searchParams.set('sslrootcert', tls.DATABASE_SSL_CA_FILE);
  return url.toString();
}

export function databaseUrls(
  config: Pick<Config, 'DATABASE_URL' | 'MIGRATION_DATABASE_URL' | 'BACKUP_DATABASE_URL' | 'DATABASE_ADMIN_URL'> & DatabaseTls,
): DatabaseUrls {
  const given = config.DATABASE_URL;
  const names = conventionalRoleNames(given);
  const givenIsSuperuser = userOf(given) === BOOTSTRAP_SUPERUSER;
  const app = givenIsSuperuser ? databaseUrlAs(given, names.app) : given;
  const tls = (url: string) => withDatabaseTls(url, config);
  return {
    app: tls(app),
    owner: tls(config.MIGRATION_DATABASE_URL ?? databaseUrlAs(app, names.owner)),
    backup: tls(config.BACKUP_DATABASE_URL ?? databaseUrlAs(app, names.backup)),
    admin: tls(config.DATABASE_ADMIN_URL ?? (givenIsSuperuser ? given : databaseUrlAs(given, BOOTSTRAP_SUPERUSER, ''))),
  };
}
export const CONFIG_KEYS = Object.keys(configSchema.shape) as (keyof Config)[];

/**
 * Settings that are secrets (passwords inside URLs, API keys). Each may be given instead as `<NAME>_FILE`, the path
 * of a file that holds the value (the Docker and Kubernetes secrets convention), so the secret is in no environment
 * a process listing or an inspect shows. The file's surrounding whitespace (its final newline) is not part of the
 * value. Payload keys, the audit chain key and the backup encryption key are read from files of their own already
 * (PAYLOAD_KEYS_FILE, AUDIT_CHAIN_KEY_FILE, BACKUP_ENCRYPTION_KEY_FILE).
 */
export const SECRET_SETTINGS = [
  'DATABASE_URL',
  'MIGRATION_DATABASE_URL',
  'BACKUP_DATABASE_URL',
  'DATABASE_ADMIN_URL',
  'SMTP_URL',
  'ERP_API_KEY',
  'ERP_API_SECRET',
  'ANTHROPIC_API_KEY',
  'OPENAI_API_KEY',
] as const satisfies readonly (keyof Config)[];

export const secretFileKey = (key: (typeof SECRET_SETTINGS)[number]) => `${key}_FILE`;

/** Every environment variable labflow reads: the schema's keys and the `_FILE` form of each secret. */
export const ENVIRONMENT_KEYS: readonly string[] = [...CONFIG_KEYS, ...SECRET_SETTINGS.map(secretFileKey)];

export class ConfigError extends Error {}

// Resolved when a secret file is named, not imported: common/ stays free of Node imports.
const readSecretFile = (path: string) => process.getBuiltinModule('node:fs').readFileSync(path, 'utf8');

/** The environment with each `<NAME>_FILE` of a secret replaced by `<NAME>` and the file's content. */
function withSecretFiles(env: Record<string, string | undefined>): Record<string, string | undefined> {
  const resolved = { ...env };
  for (const key of SECRET_SETTINGS) {
    const fileKey = secretFileKey(key);
    const file = env[fileKey];
    if (!file) continue;
    if (env[key]) throw new ConfigError(`invalid configuration: set ${key} or ${fileKey}, not both`);
    let content: string;
    try {
      content = readSecretFile(file);
    } catch (err) {
      const why = (err as NodeJS.ErrnoException).code ?? (err as Error).message;
      throw new ConfigError(`invalid configuration: ${fileKey} names ${file}, which cannot be read (${why})`);
    }
    const value = content.trim();
    if (!value) throw new ConfigError(`invalid configuration: ${fileKey} names ${file}, which is empty`);
    resolved[key] = value;
  }
  return resolved;
}

export function loadConfig(environment: Record<string, string | undefined> = process.env): Config {
  const env = withSecretFiles(environment);
  const known = Object.fromEntries(CONFIG_KEYS.map((key) => [key, env[key] === '' ? undefined : env[key]]));
  const parsed = configSchema.safeParse(known);
  if (!parsed.success) {
    const lines = parsed.error.issues.map((issue) => `  ${issue.path.join('.')}: ${issue.message}`);
    throw new ConfigError(`invalid configuration:\n${lines.join('\n')}`);
  }
  return parsed.data;
}
