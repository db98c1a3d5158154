/**
 * The production-shaped Temporal server on this machine: labflow's Go-built server (temporal-server/, built by
 * scripts/install-temporal-server.sh) on PostgreSQL with SQL advanced visibility, mTLS on the frontend
 * (scripts/cluster/make-certs.sh) and roles by certificate subject (temporal-config/server/roles.yaml), configured
 * from temporal-config/. Used by `npm run start:cluster` and by the cluster profile of the tests.
 */
import { execFile, execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { Connection } from '@temporalio/client';
import { msToTs } from '@temporalio/common/lib/time';
import pg from 'pg';
import { freePort } from './free-port';
import { canBind } from './ports';
import { forwardLines } from './child-service';

const root = join(__dirname, '..', '..');
const run = promisify(execFile);

/** The server's configuration template and dynamic config; docker-compose.yml's temporal service mounts the same. */
export const SERVER_CONFIG_TEMPLATE = join(root, 'temporal-config', 'server', 'config.yaml');
export const DYNAMIC_CONFIG_FILE = join(root, 'temporal-config', 'dynamicconfig', 'production-sql.yaml');

export interface ClusterPorts {
  frontend: number;
  frontendHttp: number;
  frontendMembership: number;
  history: number;
  historyMembership: number;
  matching: number;
  matchingMembership: number;
  worker: number;
  workerMembership: number;
  metrics: number;
}

export interface TemporalClusterOptions {
  /** Certificates, the rendered server config and the database password live here. */
  dir: string;
  /** A PostgreSQL superuser URL: it creates Temporal's role and databases. */
  adminUrl: string;
  databaseName?: string;
  visibilityDatabaseName?: string;
  /** Temporal's own PostgreSQL role (it owns both databases; labflow's roles have no access to them). */
  role?: string;
  /** The frontend's gRPC port; the other ports are free ones unless given. */
  ports?: Partial<ClusterPorts>;
  logLevel?: 'debug' | 'info' | 'warn' | 'error';
  onOutput?: (line: string) => void;
  say?: (line: string) => void;
}

/** What a labflow process needs to talk to the cluster: its address and the TEMPORAL_TLS_* settings. */
export interface ClusterClientSettings {
  TEMPORAL_ADDRESS: string;
  TEMPORAL_TLS_CA_FILE: string;
  TEMPORAL_TLS_CERT_FILE: string;
  TEMPORAL_TLS_KEY_FILE: string;
  TEMPORAL_TLS_SERVER_NAME: string;
}

export interface TemporalCluster {
  address: string;
  clientSettings: ClusterClientSettings;
  certDir: string;
  process: ChildProcess;
  /** SIGTERM (then SIGKILL after 15 s); resolves once the server has exited. */
  stop(): Promise<void>;
  /** SIGKILL, as a crash would; resolves once the server has exited. */
  kill(): Promise<void>;
  /** Starts the exited server again on the same databases, ports and certificates; resolves once it answers. */
  restart(): Promise<void>;
}

export interface TemporalServerBinaries {
  /** labflow's server (temporal-server/), the build of this checkout's source. */
  server: string;
  /** The directory that also holds the SQL schema tool. */
  dir: string;
}

/** labflow's Go-built server and the SQL tool, building them first if needed (progress on stderr). */
export function temporalServerBinaries(): TemporalServerBinaries {
  const server = execFileSync('bash', [join(root, 'scripts', 'install-temporal-server.sh'), '--print-server'], {
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'inherit'],
  }).trim();
  return { server, dir: dirname(server) };
}

/** Who may do what on the frontend, by certificate subject (read by the server at start). */
export const rolesFile = join(root, 'temporal-config', 'server', 'roles.yaml');

export function makeCertificates(certDir: string): void {
  execFileSync('bash', [join(root, 'scripts', 'cluster', 'make-certs.sh'), certDir], { stdio: ['ignore', 'ignore', 'inherit'] });
}

/** The settings of a client holding one of make-certs.sh's certificates (labflow's unless another is named). */
export function clientSettings(certDir: string, address: string, certificate = 'labflow'): ClusterClientSettings {
  return {
    TEMPORAL_ADDRESS: address,
    TEMPORAL_TLS_CA_FILE: join(certDir, 'ca.pem'),
    TEMPORAL_TLS_CERT_FILE: join(certDir, `${certificate}.pem`),
    TEMPORAL_TLS_KEY_FILE: join(certDir, `${certificate}.key`),
    TEMPORAL_TLS_SERVER_NAME: 'localhost',
  };
}

const quoteIdent = (name: string) => {
  if (!/^[a-z_][a-z0-9_]*$/.test(name)) throw new Error(`not a plain PostgreSQL name: ${name}`);
  return `"${name}"`;
};

/** The role's password, made once and kept (mode 0600) beside the certificates. */
function rolePassword(dir: string): string {
  const file = join(dir, 'temporal-db-password');
  if (!existsSync(file)) writeFileSync(file, `${randomBytes(18).toString('base64url')}\n`, { mode: 0o600 });
  return readFileSync(file, 'utf8').trim();
}

/**
 * Temporal's role and its two databases, with the schemas the SQL tool embeds brought to the server's version.
 * Running it again changes nothing (and after a server upgrade, applies the new schema versions).
 */
export async function prepareTemporalDatabases(
  options: TemporalClusterOptions,
  bin: string,
): Promise<{ role: string; password: string; names: string[] }> {
  const say = options.say ?? (() => undefined);
  const role = options.role ?? 'temporal';
  const password = rolePassword(options.dir);
  const names = [options.databaseName ?? 'temporal', options.visibilityDatabaseName ?? 'temporal_visibility'];
  const admin = new pg.Client({ connectionString: options.adminUrl });
  await admin.connect();
  try {
    const exists = await admin.query('select 1 from pg_roles where rolname = $1', [role]);
    const verb = exists.rowCount ? 'ALTER' : 'CREATE';
    await admin.query(`${verb} ROLE ${quoteIdent(role)} LOGIN PASSWORD '${password.replace(/'/g, "''")}'`);
    for (const name of names) {
      const db = await admin.query('select 1 from pg_database where datname = $1', [name]);
      if (!db.rowCount) {
        await admin.query(`CREATE DATABASE ${quoteIdent(name)} OWNER ${quoteIdent(role)}`);
        say(`PostgreSQL: created database "${name}" owned by "${role}"`);
      }
    }
  } finally {
    await admin.end();
  }
  const url = new URL(options.adminUrl);
  const base = ['--plugin', 'postgres12', '--ep', url.hostname, '-p', url.port || '5432', '-u', role, '--pw', password];
  const schemas: Record<string, string> = { [names[0]]: 'postgresql/v12/temporal', [names[1]]: 'postgresql/v12/visibility' };
  for (const name of names) {
    const tool = join(bin, 'temporal-sql-tool');
    if (!(await hasSchemaVersionTable(options.adminUrl, name))) {
      await run(tool, [...base, '--db', name, 'setup-schema', '-v', '0.0']);
    }
    await run(tool, [...base, '--db', name, 'update-schema', '--schema-name', schemas[name]]);
    say(`PostgreSQL: "${name}" is at the Temporal schema version of this server`);
  }
  return { role, password, names };
}

async function hasSchemaVersionTable(adminUrl: string, database: string): Promise<boolean> {
  const url = new URL(adminUrl);
  url.pathname = `/${database}`;
  const client = new pg.Client({ connectionString: url.toString() });
  await client.connect();
  try {
    const found = await client.query("select 1 from information_schema.tables where table_name = 'schema_version'");
    return Boolean(found.rowCount);
  } finally {
    await client.end();
  }
}

async function choosePorts(wanted: Partial<ClusterPorts>): Promise<ClusterPorts> {
  const keys: (keyof ClusterPorts)[] = [
    'frontend',
    'frontendHttp',
    'frontendMembership',
    'history',
    'historyMembership',
    'matching',
    'matchingMembership',
    'worker',
    'workerMembership',
    'metrics',
  ];
  const ports = {} as ClusterPorts;
  for (const key of keys) ports[key] = wanted[key] ?? (key.endsWith('Membership') ? await membershipPort() : await freePort());
  return ports;
}

/** Temporal stores membership ports in a smallint column: they must be below 32768. */
async function membershipPort(): Promise<number> {
  for (let attempt = 0; attempt < 200; attempt++) {
    const port = 20_000 + Math.floor(Math.random() * 12_000);
    if (await canBind('127.0.0.1', port)) return port;
  }
  throw new Error('no free port below 32768 for Temporal membership');
}

/** temporal-config/server/config.yaml with this cluster's values. */
export function renderServerConfig(values: Record<string, string>): string {
  const template = readFileSync(SERVER_CONFIG_TEMPLATE, 'utf8');
  return template.replace(/\$\{([A-Z_]+)\}/g, (_, name: string) => {
    if (!(name in values)) throw new Error(`temporal-config/server/config.yaml uses \${${name}}, which has no value`);
    return values[name];
  });
}

export async function startTemporalCluster(options: TemporalClusterOptions): Promise<TemporalCluster> {
  const say = options.say ?? (() => undefined);
  const dir = resolve(options.dir);
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const certDir = join(dir, 'certs');
  const binaries = temporalServerBinaries();
  makeCertificates(certDir);
  const { role, password, names } = await prepareTemporalDatabases({ ...options, dir }, binaries.dir);
  const ports = await choosePorts(options.ports ?? {});
  const admin = new URL(options.adminUrl);
  const configFile = join(dir, 'temporal-server.yaml');
  writeFileSync(
    configFile,
    renderServerConfig({
      LOG_LEVEL: options.logLevel ?? 'warn',
      DB_NAME: names[0],
      VISIBILITY_DB_NAME: names[1],
      DB_ADDRESS: `${admin.hostname}:${admin.port || '5432'}`,
      DB_USER: role,
      DB_PASSWORD: password,
      CERT_DIR: certDir,
      METRICS_PORT: String(ports.metrics),
      FRONTEND_PORT: String(ports.frontend),
      FRONTEND_BIND_IP: '127.0.0.1',
      FRONTEND_HTTP_PORT: String(ports.frontendHttp),
      FRONTEND_MEMBERSHIP_PORT: String(ports.frontendMembership),
      HISTORY_PORT: String(ports.history),
      HISTORY_MEMBERSHIP_PORT: String(ports.historyMembership),
      MATCHING_PORT: String(ports.matching),
      MATCHING_MEMBERSHIP_PORT: String(ports.matchingMembership),
      WORKER_PORT: String(ports.worker),
      WORKER_MEMBERSHIP_PORT: String(ports.workerMembership),
      DYNAMIC_CONFIG_FILE,
    }),
    { mode: 0o600 },
  );

  const address = `127.0.0.1:${ports.frontend}`;
  say(`Temporal: starting the server (PostgreSQL "${names[0]}", visibility "${names[1]}", mTLS, roles from ${rolesFile}) on ${address}`);
  let child!: ChildProcess;
  let exited: number | null = null;
  let exitedPromise!: Promise<void>;
  const launch = () => {
    exited = null;
    child = spawn(binaries.server, ['--config-file', configFile, '--roles-file', rolesFile, 'start'], { stdio: ['ignore', 'pipe', 'pipe'] });
    forwardLines(child, options.onOutput);
    exitedPromise = new Promise<void>((resolveExit) =>
      child.once('exit', (code, signal) => {
        exited = code ?? (signal ? 128 : -1);
        resolveExit();
      }),
    );
  };
  launch();
  const settings = clientSettings(certDir, address);
  const stop = async () => {
    if (exited !== null) return;
    child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), 15_000);
    await exitedPromise;
    clearTimeout(timer);
  };
  const kill = async () => {
    if (exited !== null) return;
    child.kill('SIGKILL');
    await exitedPromise;
  };
  const restart = async () => {
    if (exited === null) throw new Error('the Temporal server is still running');
    say(`Temporal: starting the server again on ${address}`);
    launch();
    try {
      await (await connectWhenUp(settings, () => exited, 180_000)).close();
    } catch (err) {
      await stop();
      throw err;
    }
  };

  try {
    const connection = await connectWhenUp(settings, () => exited, 180_000);
    try {
      await ensureNamespace(connection, 'default', say);
    } finally {
      await connection.close();
    }
  } catch (err) {
    await stop();
    throw err;
  }
  return {
    address,
    clientSettings: settings,
    certDir,
    get process() {
      return child;
    },
    stop,
    kill,
    restart,
  };
}

export function clusterConnectionOptions(settings: ClusterClientSettings) {
  return {
    address: settings.TEMPORAL_ADDRESS,
    tls: {
      serverRootCACertificate: readFileSync(settings.TEMPORAL_TLS_CA_FILE),
      clientCertPair: { crt: readFileSync(settings.TEMPORAL_TLS_CERT_FILE), key: readFileSync(settings.TEMPORAL_TLS_KEY_FILE) },
      serverNameOverride: settings.TEMPORAL_TLS_SERVER_NAME,
    },
  };
}

async function connectWhenUp(settings: ClusterClientSettings, exited: () => number | null, timeoutMs: number): Promise<Connection> {
  const deadline = Date.now() + timeoutMs;
  let last = '';
  for (;;) {
    const code = exited();
    if (code !== null) throw new Error(`the Temporal server exited with code ${code} while starting${last ? ` (last: ${last})` : ''}`);
    try {
      const connection = await Connection.connect({ ...clusterConnectionOptions(settings), connectTimeout: 2000 });
      await connection.withDeadline(Date.now() + 3000, () => connection.workflowService.getSystemInfo({}));
      return connection;
    } catch (err) {
      last = (err as Error).message.split('\n')[0];
      if (Date.now() > deadline) throw new Error(`the Temporal server did not answer on ${settings.TEMPORAL_ADDRESS}: ${last}`);
      await new Promise((r) => setTimeout(r, 500));
    }
  }
}

/** The namespace labflow uses, created once with a 30-day retention (docker-compose.yml's admin tools do the same). */
export async function ensureNamespace(connection: Connection, namespace: string, say: (line: string) => void): Promise<void> {
  const deadline = Date.now() + 120_000;
  for (;;) {
    try {
      await connection.workflowService.describeNamespace({ namespace });
      return;
    } catch {
      // not there yet
    }
    try {
      await connection.workflowService.registerNamespace({
        namespace,
        workflowExecutionRetentionPeriod: msToTs('30 days'),
      });
      say(`Temporal: namespace "${namespace}" created`);
    } catch (err) {
      // Already registered (by us a moment ago, or by a concurrent start): wait until the frontend knows it.
      if (!/already exists|AlreadyExists/i.test((err as Error).message) && Date.now() > deadline) throw err;
    }
    if (Date.now() > deadline) throw new Error(`namespace "${namespace}" did not become available`);
    await new Promise((r) => setTimeout(r, 1000));
  }
}
