import type { Db } from '../../db/knex';
import { randomBytes } from 'node:crypto';
import type { Server } from 'node:http';
import { join } from 'node:path';
import type { Client } from '@temporalio/client';
import type { NativeConnection, Worker } from '@temporalio/worker';
import { createActivities, type ActivityDeps } from '../../activities';
import { databaseUrlOf } from '../../activities/backups';
import { createMailer } from '../../activities/mailer';
import type Koa from 'koa';
import { createApp } from '../../api/app';
import { startAuthentication } from '../../api/credentials/authentication';
import { DEFAULT_CREDENTIAL_SETTINGS } from '../../api/credentials/settings';
import { createEventStreams } from '../../api/live/event-streams';
import type { ApiConfig } from '../../api/deps';
import { oidcResolver } from '../../api/oidc';
import { deliverQueuedEmails } from '../../api/temporal/notifications';
import type { OidcSettings } from '../../api/oidc-settings';
import { databaseUrlAs } from '../../common/config';
import { createDb } from '../../db/knex';
import { createLogger, type Logger } from '../../platform/logger';
import type { WorkerDeployment } from '../../platform/worker-deployment';
import { createWorker } from '../../workers/create-worker';
import { testEnv } from '../setup/env';

export interface Platform {
  taskQueue: string;
  baseUrl: string;
  api: (
    method: string,
    path: string,
    options?: { key?: string; body?: unknown; raw?: string; headers?: Record<string, string> },
  ) => Promise<ApiResponse>;
  stopWorker(): Promise<void>;
  startWorker(): Promise<void>;
  stop(): Promise<void>;
}

/** What the API helpers need of a platform: a way to call its API. */
export type ApiCaller = Pick<Platform, 'api'>;

/** Calls the API at baseUrl (an API key as bearer token, a JSON body), JSON answers parsed. */
export function apiCaller(baseUrl: string): ApiCaller {
  return {
    async api(method, path, { key, body, raw, headers = {} } = {}) {
      const init: RequestInit = { method, headers: { ...headers } };
      if (key) (init.headers as Record<string, string>).authorization = `Bearer ${key}`;
      if (raw !== undefined || body !== undefined) {
        (init.headers as Record<string, string>)['content-type'] ??= 'application/json';
        init.body = raw ?? JSON.stringify(body);
      }
      const res = await fetch(baseUrl + path, init);
      const text = await res.text();
      let parsed: unknown = text;
      if (/json/.test(res.headers.get('content-type') ?? '')) parsed = JSON.parse(text);
      return { status: res.status, headers: res.headers, body: parsed };
    },
  };
}

export interface ApiResponse {
  status: number;
  headers: Headers;
  body: any; // eslint-disable-line @typescript-eslint/no-explicit-any
}

/** The Temporal Web UI's origin as the test API is configured: the one browser origin allowed to call /codec. */
export const TEST_UI_ORIGIN = 'http://localhost:8233';

/** Every test file sends wrong keys from 127.0.0.1: an alert (and its audit event) only where a test asks for one. */
export const TEST_CREDENTIAL_SETTINGS = { ...DEFAULT_CREDENTIAL_SETTINGS, failedKeyAlertThreshold: Number.MAX_SAFE_INTEGER };

export const testApiConfig = (taskQueue: string, overrides: Partial<ApiConfig> = {}): ApiConfig => ({
  taskQueue,
  bodyLimitBytes: 64 * 1024,
  apiKeyCacheTtlMs: 1000,
  signing: { maxFailures: 3, failureWindowMs: 60_000, lockMs: 60_000 },
  documentDefaults: { stageDue: '72h', reminderBefore: '24h', periodicReview: '365d' },
  summary: {
    providers: ['anthropic', 'openai', 'ollama'],
    extractiveFallback: true,
    attempt: { timeout: '10s', maxAttempts: 3, maxTokens: 1024, maxRetryAfter: '5s' },
    maxRounds: 3,
    maxWaitMs: 15_000,
    dailyTokenBudget: 1_000_000_000,
  },
  codecCorsOrigins: [TEST_UI_ORIGIN],
  credentials: TEST_CREDENTIAL_SETTINGS,
  // Raised so that no test trips them by accident; test/api/hardening tests them with their own, low ones.
  rateLimits: {
    windowMs: 60_000,
    points: 1_000_000_000,
    ipPoints: 1_000_000_000,
    concurrent: 1000,
    signingWindowMs: 60_000,
    signingPoints: 1_000_000_000,
    signingIpPoints: 1_000_000_000,
    keyPrefix: taskQueue,
  },
  corsOrigins: [],
  trustedProxies: 0,
  backfillMaxWindowMs: 7 * 24 * 3600_000,
  ...overrides,
});

type Activities = ReturnType<typeof createActivities>;

/**
 * A worker on its own task queue and the real Koa app listening on a free port, both against the run's shared
 * Temporal server, database and SMTP sink. Tests talk to it over HTTP, as a client would.
 */
export interface PlatformOptions {
  withWorker?: boolean;
  /**
   * A database of the test's own (test/helpers/scratch-database.ts) instead of the run's shared one, as the
   * superuser; the API and the worker connect to it as the run's application role, as they do to the shared one.
   */
  db?: Db;
  apiConfig?: Partial<ApiConfig>;
  /** Dependencies the worker's activities get beyond the database and mailer (an LLM setup, an ERP). */
  activityDeps?: Partial<ActivityDeps>;
  /** The worker's activities as the test wants them: the real ones, some wrapped (to hold one at a chosen moment). */
  wrapActivities?: (activities: Activities) => Activities;
  /** Where the API and the worker's activities log; silent when absent. */
  log?: Logger;
  /** Another Temporal server than the run's shared one, for a test that must inspect everything its server holds. */
  temporal?: { client: Client; nativeConnection: NativeConnection };
  /** Another platform's task queue, so this one's worker polls beside that one's (a second build, a second worker). */
  taskQueue?: string;
  /** Workflow code other than the current bundle (a deliberate change, test/replay/changes/). */
  workflowBundle?: { code: string };
  /** Worker versioning: the deployment and build this platform's worker runs. */
  deployment?: WorkerDeployment;
  /** Single sign-on: OpenID Connect bearer tokens accepted beside API keys. */
  oidc?: OidcSettings;
  /** Sees every answer the app gives (test/helpers/openapi-conformance.ts records them to check them against the document). */
  onResponse?: Koa.Middleware;
}

/** Where this test process's platforms log their errors: .data/test-logs/<pid>.log. */
let errorLog: Logger | undefined;
function testErrorLog(): Logger {
  const dir = join(__dirname, '..', '..', '.data', 'test-logs');
  errorLog ??= createLogger({ LOG_LEVEL: 'error', LOG_PRETTY: false }, 'test', join(dir, `${process.pid}.log`));
  return errorLog;
}

export async function startPlatform(options: PlatformOptions = {}): Promise<Platform> {
  const env = testEnv();
  const temporal = options.temporal ?? { client: env.client, nativeConnection: env.nativeConnection };
  // The API and the worker run as the application role, backups as the read-only one (db/database-roles.ts).
  const db = options.db ? createDb(databaseUrlAs(databaseUrlOf(options.db), env.roles.app), 10) : env.appDb;
  const backupDatabaseUrl = databaseUrlAs(databaseUrlOf(db), env.roles.backup);
  const taskQueue = options.taskQueue ?? `test-${randomBytes(4).toString('hex')}`;
  // Errors only, to a file per test process: scripts/test.sh prints the unhandled ones when a run fails.
  const log = options.log ?? testErrorLog();
  const mailer = createMailer({
    smtpUrl: `smtp://127.0.0.1:${env.smtpPort}`,
    from: 'labflow <labflow@lab.test>',
    outboxDir: '/nonexistent',
  });
  let worker: Worker | undefined;
  let running: Promise<void> | undefined;

  async function startWorker() {
    worker = await createWorker({
      connection: temporal.nativeConnection,
      namespace: 'default',
      taskQueue,
      activities: (options.wrapActivities ?? ((activities) => activities))(
        createActivities({
          db,
          mailer,
          publicUrl: 'http://labflow.test',
          mailDomain: 'lab.test',
          lab: { name: 'Labflow Test Laboratory', address: '1 Test Street, Testville' },
          backupDatabaseUrl,
          ...options.activityDeps,
        }),
      ),
      workflowBundle: options.workflowBundle ?? env.workflowBundle,
      dataConverter: env.dataConverter,
      deployment: options.deployment,
    });
    running = worker.run();
  }
  async function stopWorker() {
    if (worker && worker.getState() === 'RUNNING') worker.shutdown();
    await running;
    worker = undefined;
  }
  if (options.withWorker !== false) await startWorker();

  const config = testApiConfig(taskQueue, options.apiConfig);
  const auth = startAuthentication(
    { db, temporal: temporal.client, config, log },
    databaseUrlOf(db),
    options.oidc
      ? [
          oidcResolver(db, options.oidc, {
            log,
            deliverEmails: (key, ids) => deliverQueuedEmails({ temporal: temporal.client, config, log }, key, ids),
          }),
        ]
      : [],
  );
  await auth.listener.ready;
  const streams = createEventStreams({ db, listener: auth.listener, settings: config.streams, log, recheck: auth.authenticate.recheck });
  await streams.ready;
  const app = createApp({
    db,
    temporal: temporal.client,
    config,
    log,
    authenticate: auth.authenticate,
    streams,
    payloadCodec: env.dataConverter.payloadCodecs?.[0],
  });
  if (options.onResponse) app.middleware.unshift(options.onResponse);
  const server: Server = await new Promise((resolve) => {
    const s = app.listen(0, '127.0.0.1', () => resolve(s));
  });
  const baseUrl = `http://127.0.0.1:${(server.address() as { port: number }).port}`;

  return {
    taskQueue,
    baseUrl,
    api: apiCaller(baseUrl).api,
    startWorker,
    stopWorker,
    async stop() {
      streams.close();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await stopWorker();
      await auth.close();
      mailer.close();
      if (options.db) await db.destroy();
    },
  };
}
