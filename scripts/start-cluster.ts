/**
 * `npm run start:cluster`: labflow on a production-shaped Temporal on this machine. The Go-built Temporal server on
 * PostgreSQL (its own role and databases, migrated by the SQL tool), SQL advanced visibility, mTLS on the frontend
 * with a local CA; two workers and two API processes on the same task queue, the first API at API_PORT. Ctrl-C
 * stops everything it started, callers first. docs/operations.md describes the shape and how to run it.
 */
import { join } from 'node:path';
import { ConfigError, databaseUrls, loadConfig, type Config } from '../common/config';
import { temporalConnectionOptions } from '../platform/temporal-connection';
import { provideAuditChainKey } from './lib/audit-chain-key';
import { describeExit, startService, type Service, type ServiceExit } from './lib/child-service';
import { prepareDatabase } from './lib/labflow-database';
import { providePayloadKeys } from './lib/payload-keys';
import { canBind, httpUrl, parseHostPort } from './lib/ports';
import { runInOwnProcessGroup } from './lib/process-group';
import { say, StartError } from './lib/say';
import { waitForSearchAttributes } from './lib/search-attributes-ready';
import { acquireStartLock } from './lib/start-lock';
import { StopRequest, StopRequested } from './lib/stop-request';
import { startTemporalCluster, type TemporalCluster } from './lib/temporal-cluster';
import { startTemporalUi, type TemporalUi } from './lib/temporal-ui';
import { waitForHttpOk } from './lib/wait-http';

const ORCHESTRATE = '--orchestrate';
const READY_TIMEOUT_MS = 120_000;
const API_STOP_GRACE_MS = 10_000;
const WORKER_STOP_GRACE_MS = 30_000;
const WORKERS = 2;
const APIS = 2;

interface Running {
  apis: Service[];
  workers: Service[];
  ui?: TemporalUi;
  temporal?: TemporalCluster;
}

async function orchestrate(): Promise<number> {
  const config = loadConfig();
  const stop = new StopRequest();
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    process.on(signal, () => {
      if (stop.request(`${signal} received`, 0)) say(`${signal} received; stopping`);
    });
  }
  process.on('disconnect', () => {
    if (stop.request('the npm process went away', 1)) say('the npm process went away; stopping');
  });
  const lock = acquireStartLock(config.DATA_DIR);
  const running: Running = { apis: [], workers: [] };
  try {
    await bringUp(config, running, stop);
    await stop.requestedPromise;
  } catch (err) {
    if (!(err instanceof StopRequested)) {
      if (err instanceof StartError || err instanceof ConfigError) console.error(`[start] cannot start: ${err.message}`);
      else console.error('[start] failed:', err);
      stop.request('start-up failed', 1);
    }
  } finally {
    await bringDown(running);
    lock.release();
    say(stop.exitCode === 0 ? 'stopped' : `stopped (${stop.reason})`);
  }
  return stop.exitCode;
}

async function bringUp(config: Config, running: Running, stop: StopRequest): Promise<void> {
  const apiPorts = Array.from({ length: APIS }, (_, i) => config.API_PORT + i);
  for (const port of apiPorts) {
    if (!(await canBind(config.API_HOST, port))) throw new StartError(`port ${port} for an API process is in use; stop that program or set API_PORT`);
  }
  const payloadKeys = providePayloadKeys(config);
  const auditChainKey = provideAuditChainKey(config);

  const adminUrl = new URL(config.DATABASE_URL);
  adminUrl.pathname = '/postgres';
  const temporal = await startTemporalCluster({
    dir: join(config.DATA_DIR, 'cluster'),
    adminUrl: adminUrl.toString(),
    ports: { frontend: parseHostPort(config.TEMPORAL_ADDRESS).port },
    logLevel: 'warn',
    say,
    // Start-up noise of a single-host cluster (services looking for each other) is not worth showing.
    onOutput: (line) => {
      if (/"level":"(fatal|panic)"/.test(line)) console.log(`[temporal] ${line}`);
    },
  });
  running.temporal = temporal;
  temporal.process.once('exit', (code, signal) => stopBecauseItDied('Temporal server', { code, signal }, stop));
  say(`Temporal: cluster ready at ${temporal.address} (mTLS; certificates in ${temporal.certDir})`);
  stop.throwIfRequested();

  await prepareDatabase(config, databaseUrls(config));
  stop.throwIfRequested();

  let uiUrl = 'none (temporal-ui-server not built: bash scripts/install-temporal-server.sh --ui)';
  running.ui = await startTemporalUi({ config, temporal, say }).catch((err: Error) => {
    say(`Web UI: not started: ${err.message}`);
    return undefined;
  });
  if (running.ui) {
    uiUrl = running.ui.url;
    running.ui.process.once('exit', (code, signal) => stopBecauseItDied('Web UI server', { code, signal }, stop));
  }

  const base: NodeJS.ProcessEnv = {
    ...process.env,
    ...payloadKeys,
    ...auditChainKey,
    ...temporal.clientSettings,
    TEMPORAL_UI_URL: running.ui?.url ?? config.TEMPORAL_UI_URL,
    TEMPORAL_DEV_SERVER: 'false',
    PRIVATE_PG: 'false',
    SEED_DEV_USERS: 'false',
  };
  say(`starting ${WORKERS} workers and ${APIS} API processes on task queue "${config.TEMPORAL_TASK_QUEUE}"`);
  for (let i = 0; i < WORKERS; i++) {
    // One schedule reconcile is enough; the others only poll. Each worker serves metrics on its own port.
    const metrics = config.WORKER_METRICS_PORT > 0 ? String(config.WORKER_METRICS_PORT + i) : '0';
    const worker = startService(`worker-${i + 1}`, 'workers/main.ts', { ...base, WORKER_METRICS_PORT: metrics, SCHEDULES: i === 0 ? base.SCHEDULES : 'false' });
    running.workers.push(worker);
    void worker.exit.then((exit) => stopBecauseItDied(`worker-${i + 1}`, exit, stop));
  }
  for (const [i, port] of apiPorts.entries()) {
    const api = startService(`api-${i + 1}`, 'api/server.ts', { ...base, API_PORT: String(port) });
    running.apis.push(api);
    void api.exit.then((exit) => stopBecauseItDied(`api-${i + 1}`, exit, stop));
  }
  for (const port of apiPorts) {
    await waitForHttpOk(`${httpUrl(config.API_HOST, port)}/healthz`, { timeoutMs: READY_TIMEOUT_MS, giveUp: () => stop.requested });
  }
  stop.throwIfRequested();
  await waitForSearchAttributes(temporalConnectionOptions({ ...config, ...temporal.clientSettings }), config.TEMPORAL_NAMESPACE, {
    timeoutMs: READY_TIMEOUT_MS,
    giveUp: () => stop.requested,
  });
  stop.throwIfRequested();
  say('labflow is ready (cluster)');
  const rows: [string, string][] = [
    ['API', `${httpUrl(config.API_HOST, apiPorts[0])}  (second process: ${httpUrl(config.API_HOST, apiPorts[1])})`],
    ['Temporal', `${temporal.address} (mTLS; labflow's client certificate: ${temporal.clientSettings.TEMPORAL_TLS_CERT_FILE})`],
    ['Temporal Web UI', uiUrl],
  ];
  if (config.SEED_DEV_USERS !== false) rows.push(['dev users', join(config.DATA_DIR, 'dev-users.json')]);
  rows.push(['stop', `Ctrl-C (or kill -INT ${process.pid})`]);
  for (const [label, value] of rows) console.log(`          ${label.padEnd(16)} ${value}`);
}

async function bringDown(running: Running): Promise<void> {
  const steps: [string, () => Promise<void>][] = [
    ...running.apis.filter((s) => !s.exited).map((s): [string, () => Promise<void>] => [s.name, () => s.stop(API_STOP_GRACE_MS)]),
    ...running.workers.filter((s) => !s.exited).map((s): [string, () => Promise<void>] => [s.name, () => s.stop(WORKER_STOP_GRACE_MS)]),
  ];
  if (running.ui) steps.push(['the Web UI server', () => running.ui!.stop()]);
  if (running.temporal) steps.push(['the Temporal server', () => running.temporal!.stop()]);
  // The API processes together, then the workers together: each group has nothing to wait for from the other half.
  const apis = steps.filter(([name]) => name.startsWith('api-'));
  const workers = steps.filter(([name]) => name.startsWith('worker-'));
  const rest = steps.filter(([name]) => !name.startsWith('api-') && !name.startsWith('worker-'));
  for (const group of [apis, workers, ...rest.map((s) => [s])]) {
    if (group.length === 0) continue;
    say(`stopping ${group.map(([name]) => name).join(', ')}`);
    await Promise.all(group.map(([name, stopIt]) => stopIt().catch((err: Error) => say(`could not stop ${name}: ${err.message}`))));
  }
}

function stopBecauseItDied(name: string, exit: ServiceExit, stop: StopRequest): void {
  if (stop.request(`the ${name} ${describeExit(exit)}`, 1)) say(`unexpected: the ${name} ${describeExit(exit)}; stopping everything`);
}

if (process.argv.includes(ORCHESTRATE)) {
  orchestrate().then(
    (code) => process.exit(code),
    (err: unknown) => {
      console.error('[start] failed:', err);
      process.exit(1);
    },
  );
} else {
  void runInOwnProcessGroup(__filename, [ORCHESTRATE]).then((code) => process.exit(code));
}
