import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Connection } from '@temporalio/client';
import pg from 'pg';
import { startDevTemporal } from '../../scripts/lib/dev-temporal';
import {
  clusterConnectionOptions,
  startTemporalCluster,
  type ClusterClientSettings,
  type TemporalCluster,
} from '../../scripts/lib/temporal-cluster';
import { ensureSearchAttributes, waitUntilSearchAttributesUsable } from '../../workers/search-attributes';

/**
 * The Temporal server a mocha run uses. TEST_TEMPORAL=cluster (scripts/test-cluster.sh): the Go-built server on
 * PostgreSQL with SQL visibility and mTLS, with databases of the run's own (dropped afterwards), as
 * `npm run start:cluster` runs it. Otherwise the dev server, as always.
 */
export interface TestTemporal {
  kind: 'dev' | 'cluster';
  address: string;
  /** For Connection.connect and NativeConnection.connect. */
  connectionOptions: { address: string; tls?: ReturnType<typeof clusterConnectionOptions>['tls'] };
  /** TEMPORAL_ADDRESS and, on the cluster, the TEMPORAL_TLS_* settings: what a worker or API process needs. */
  processEnv: Record<string, string>;
  /** On the cluster: SIGKILL the server and start it again on the same databases and ports (fault tests). */
  server?: TestTemporalServer;
  stop(): Promise<void>;
}

export type TestTemporalServer = Pick<TemporalCluster, 'kill' | 'restart'>;

export const testTemporalKind = (): 'dev' | 'cluster' => (process.env.TEST_TEMPORAL === 'cluster' ? 'cluster' : 'dev');

export async function startTestTemporal(adminUrl: string): Promise<TestTemporal> {
  if (testTemporalKind() === 'dev') {
    const server = await startDevTemporal({ logLevel: 'error' });
    return {
      kind: 'dev',
      address: server.address,
      connectionOptions: { address: server.address },
      processEnv: { TEMPORAL_ADDRESS: server.address },
      stop: () => server.stop(),
    };
  }
  const suffix = `${process.pid}_${randomBytes(3).toString('hex')}`;
  const dir = mkdtempSync(join(tmpdir(), 'labflow-test-cluster-'));
  const names = [`temporal_test_${suffix}`, `temporal_visibility_test_${suffix}`];
  const cluster = await startTemporalCluster({
    dir,
    adminUrl,
    databaseName: names[0],
    visibilityDatabaseName: names[1],
    role: 'temporal_test',
    logLevel: 'error',
    onOutput: (line) => {
      if (process.env.TEST_LOG_LEVEL && /"level":"(error|fatal|panic)"/.test(line)) process.stdout.write(`[temporal] ${line}\n`);
    },
  });
  const options = clusterConnectionOptions(cluster.clientSettings);
  // For the test that looks into the visibility database itself.
  const visibilityUrl = new URL(adminUrl);
  visibilityUrl.pathname = `/${names[1]}`;
  process.env.TEST_TEMPORAL_VISIBILITY_URL = visibilityUrl.toString();
  // On the dev server the attributes come from its flags; here they are registered as a worker does at start-up.
  const connection = await Connection.connect(options);
  try {
    await ensureSearchAttributes(connection, 'default');
    await waitUntilSearchAttributesUsable(connection, 'default', { timeoutMs: 120_000 });
  } finally {
    await connection.close();
  }
  return {
    kind: 'cluster',
    address: cluster.address,
    connectionOptions: options,
    processEnv: { ...(cluster.clientSettings satisfies ClusterClientSettings) },
    server: { kill: () => cluster.kill(), restart: () => cluster.restart() },
    stop: async () => {
      await cluster.stop();
      await dropDatabases(adminUrl, names);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

async function dropDatabases(adminUrl: string, names: string[]): Promise<void> {
  const admin = new pg.Client({ connectionString: adminUrl });
  await admin.connect();
  try {
    for (const name of names) await admin.query(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`);
  } finally {
    await admin.end();
  }
}
