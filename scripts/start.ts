/**
 * `npm start`: the whole platform on local defaults (Temporal, PostgreSQL, the worker, the API) and, on Ctrl-C or
 * SIGTERM, an orderly stop of what this start brought up. Settings come from common/config.ts; DESIGN.md §1.
 *
 * This file runs twice: first as a thin front that stays in the terminal's process group, then with --orchestrate
 * in a process group of its own, where the work happens (why: scripts/lib/process-group.ts).
 */
import { join } from 'node:path';
import { ConfigError, loadConfig, secretFileKey, type Config, type DatabaseUrls } from '../common/config';
import { describeExit, startService, type Service, type ServiceExit } from './lib/child-service';
import type { DevTemporal } from './lib/dev-temporal';
import { canBind, httpUrl } from './lib/ports';
import { provideAuditChainKey } from './lib/audit-chain-key';
import { providePayloadKeys } from './lib/payload-keys';
import { providePostgres } from './lib/postgres-endpoint';
import type { PrivatePostgres } from './lib/private-postgres';
import { runInOwnProcessGroup } from './lib/process-group';
import { prepareDatabase } from './lib/labflow-database';
import { say, StartError } from './lib/say';
import { acquireStartLock } from './lib/start-lock';
import { StopRequest, StopRequested } from './lib/stop-request';
import { provideTemporal, type TemporalEndpoint } from './lib/temporal-endpoint';
import { waitForHttpOk } from './lib/wait-http';
import { waitForSearchAttributes } from './lib/search-attributes-ready';
import { temporalConnectionOptions } from '../platform/temporal-connection';

const ORCHESTRATE = '--orchestrate';
const API_READY_TIMEOUT_MS = 60_000;
const API_STOP_GRACE_MS = 10_000;
const SEARCH_ATTRIBUTES_TIMEOUT_MS = 120_000;
// Long enough for running activities to finish or heartbeat their cancellation.
const WORKER_STOP_GRACE_MS = 30_000;

/** What this start brought up, and so must stop: never a server that was already running. */
interface Running {
  api?: Service;
  worker?: Service;
  temporal?: DevTemporal;
  postgres?: PrivatePostgres;
}

async function orchestrate(): Promise<number> {
  const config = loadConfig();
  const stop = new StopRequest();
  stopOnSignals(stop);
  const lock = acquireStartLock(config.DATA_DIR);
  const running: Running = {};
  try {
    await bringUp(config, running, stop);
    await stop.requestedPromise;
  } catch (err) {
    if (!(err instanceof StopRequested)) {
      reportFailure(err);
      stop.request('start-up failed', 1);
    }
  } finally {
    const startedSomething = Object.values(running).some(Boolean);
    await bringDown(running);
    lock.release();
    if (startedSomething) say(stop.exitCode === 0 ? 'stopped' : `stopped (${stop.reason})`);
  }
  return stop.exitCode;
}

async function bringUp(config: Config, running: Running, stop: StopRequest): Promise<void> {
  await checkPortsFree(config);
  const payloadKeys = providePayloadKeys(config);
  const auditChainKey = provideAuditChainKey(config);

  const temporal = await provideTemporal(config);
  if (temporal.devServer) {
    running.temporal = temporal.devServer;
    const server = temporal.devServer.process;
    server.once('exit', (code, signal) => stopBecauseItDied('Temporal dev server', { code, signal }, stop));
  }
  stop.throwIfRequested();

  const postgres = await providePostgres(config);
  running.postgres = postgres.privateCluster ?? undefined;
  stop.throwIfRequested();

  const apiUrl = httpUrl(config.API_HOST, config.API_PORT);
  await prepareDatabase(config, postgres.urls);
  stop.throwIfRequested();

  const env = childEnvironment(temporal, postgres.urls, { ...payloadKeys, ...auditChainKey });
  say('starting the worker and the API');
  running.worker = startService('worker', 'workers/main.ts', env);
  void running.worker.exit.then((exit) => stopBecauseItDied('worker', exit, stop));
  running.api = startService('api', 'api/server.ts', env);
  void running.api.exit.then((exit) => stopBecauseItDied('API', exit, stop));

  await waitForHttpOk(`${apiUrl}/healthz`, { timeoutMs: API_READY_TIMEOUT_MS, giveUp: () => stop.requested });
  stop.throwIfRequested();
  await waitForSearchAttributes(temporalConnectionOptions({ ...config, TEMPORAL_ADDRESS: temporal.address }), config.TEMPORAL_NAMESPACE, {
    timeoutMs: SEARCH_ATTRIBUTES_TIMEOUT_MS,
    giveUp: () => stop.requested,
  });
  stop.throwIfRequested();
  printReadyBanner(config, apiUrl, temporal.uiUrl);
}

/** A clash is reported before anything has started, not as a child's crash after Temporal and Postgres came up. */
async function checkPortsFree(config: Config): Promise<void> {
  const wanted = [{ what: 'the API', host: config.API_HOST, port: config.API_PORT, setting: 'API_PORT' }];
  if (config.WORKER_METRICS_PORT > 0) {
    wanted.push({ what: "the worker's metrics", host: '127.0.0.1', port: config.WORKER_METRICS_PORT, setting: 'WORKER_METRICS_PORT' });
  }
  for (const { what, host, port, setting } of wanted) {
    if (!(await canBind(host, port))) {
      throw new StartError(`port ${port} for ${what} is in use (is labflow already running?); stop that program or set ${setting}`);
    }
  }
}

/**
 * The children get this environment (PATH, HOME, TEMPORAL_CLI and every setting the user gave) with the addresses
 * as they turned out, and with the start-up duties switched off, since they are done. They connect as the
 * application role (and the worker's backups as the read-only one); the owner's and the admin's connections stay here.
 */
function childEnvironment(temporal: TemporalEndpoint, urls: DatabaseUrls, keyFiles: Record<string, string>): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env };
  // The URLs below replace the database settings, whichever form (value or _FILE) the user gave them in.
  for (const key of ['DATABASE_URL', 'BACKUP_DATABASE_URL', 'MIGRATION_DATABASE_URL', 'DATABASE_ADMIN_URL'] as const) {
    delete env[key];
    delete env[secretFileKey(key)];
  }
  return {
    ...env,
    ...keyFiles,
    TEMPORAL_ADDRESS: temporal.address,
    TEMPORAL_UI_URL: temporal.uiUrl,
    DATABASE_URL: urls.app,
    BACKUP_DATABASE_URL: urls.backup,
    TEMPORAL_DEV_SERVER: 'false',
    PRIVATE_PG: 'false',
    SEED_DEV_USERS: 'false',
    // The local platform may deliver webhooks to a receiver on this machine (docs/events.md); a deployment names its
    // own allowlist, and nothing allowlists labflow itself.
    WEBHOOK_ALLOWED_HOSTS: env.WEBHOOK_ALLOWED_HOSTS ?? '127.0.0.1',
  };
}

/** Callers before what they call: the API and the worker still use Temporal and Postgres while they finish. */
async function bringDown(running: Running): Promise<void> {
  const steps: [string, (() => Promise<void>) | undefined][] = [
    ['the API', running.api && !running.api.exited ? () => running.api!.stop(API_STOP_GRACE_MS) : undefined],
    ['the worker', running.worker && !running.worker.exited ? () => running.worker!.stop(WORKER_STOP_GRACE_MS) : undefined],
    ['the Temporal dev server', running.temporal ? () => running.temporal!.stop() : undefined],
    ['the private PostgreSQL cluster', running.postgres ? () => running.postgres!.stop() : undefined],
  ];
  for (const [name, stopIt] of steps) {
    if (!stopIt) continue;
    say(`stopping ${name}`);
    try {
      await stopIt();
    } catch (err) {
      say(`could not stop ${name}: ${(err as Error).message}`);
    }
  }
}

function stopBecauseItDied(name: string, exit: ServiceExit, stop: StopRequest): void {
  if (stop.request(`the ${name} ${describeExit(exit)}`, 1)) {
    say(`unexpected: the ${name} ${describeExit(exit)}; stopping everything`);
  }
}

function stopOnSignals(stop: StopRequest): void {
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    process.on(signal, () => {
      if (stop.request(`${signal} received`, 0)) say(`${signal} received; stopping`);
    });
  }
  // The front process holds the other end of the IPC channel: when it is gone, nobody is watching this one.
  process.on('disconnect', () => {
    if (stop.request('the npm start process went away', 1)) say('the npm start process went away; stopping');
  });
}

function printReadyBanner(config: Config, apiUrl: string, uiUrl: string): void {
  const rows: [string, string][] = [
    ['API', `${apiUrl}  (health: ${apiUrl}/healthz)`],
    ['Temporal Web UI', uiUrl],
  ];
  if (config.SEED_DEV_USERS !== false) rows.push(['dev users', join(config.DATA_DIR, 'dev-users.json')]);
  rows.push(['stop', `Ctrl-C (or kill -INT ${process.pid})`]);
  say('labflow is ready');
  for (const [label, value] of rows) console.log(`          ${label.padEnd(16)} ${value}`);
}

function reportFailure(err: unknown): void {
  if (err instanceof StartError || err instanceof ConfigError) console.error(`[start] cannot start: ${err.message}`);
  else console.error('[start] failed:', err);
}

if (process.argv.includes(ORCHESTRATE)) {
  orchestrate().then(
    (code) => process.exit(code),
    (err: unknown) => {
      reportFailure(err);
      process.exit(1);
    },
  );
} else {
  void runInOwnProcessGroup(__filename, [ORCHESTRATE]).then((code) => process.exit(code));
}
