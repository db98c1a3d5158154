import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { dropRoles } from '../../db/database-roles';
import { dropDatabase } from '../../db/knex';
import { startDevTemporal } from '../../scripts/lib/dev-temporal';
import { startTemporalCluster } from '../../scripts/lib/temporal-cluster';

/** A Temporal server a bench's workers and API processes talk to, and the settings they need for it. */
export interface BenchTemporal {
  kind: 'dev' | 'cluster';
  /** TEMPORAL_ADDRESS and, on the cluster, the TEMPORAL_TLS_* settings. */
  settings: Record<string, string>;
  /** The server's own process (the Temporal CLI or the Go-built server), for its resident memory. */
  pid: number;
  stop(): Promise<void>;
}

export async function startBenchDevServer(): Promise<BenchTemporal> {
  const server = await startDevTemporal({ logLevel: 'error' });
  return { kind: 'dev', settings: { TEMPORAL_ADDRESS: server.address }, pid: server.process.pid!, stop: () => server.stop() };
}

/**
 * The production-shaped server (`npm run start:cluster`'s: PostgreSQL persistence, SQL visibility, mTLS) on
 * databases and a role of the bench's own, all dropped by stop(), with its files in a temporary directory.
 */
export async function startBenchCluster(adminUrl: string, say: (line: string) => void): Promise<BenchTemporal> {
  const suffix = `${process.pid}_${randomBytes(3).toString('hex')}`;
  const dir = mkdtempSync(join(tmpdir(), 'labflow-bench-cluster-'));
  const names = [`temporal_bench_${suffix}`, `temporal_visibility_bench_${suffix}`];
  const role = `temporal_bench_${suffix}`;
  const dropAll = async () => {
    for (const name of names) {
      const url = new URL(adminUrl);
      url.pathname = `/${name}`;
      await dropDatabase(url.toString());
    }
    await dropRoles(adminUrl, [role]);
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    const cluster = await startTemporalCluster({
      dir,
      adminUrl,
      databaseName: names[0],
      visibilityDatabaseName: names[1],
      role,
      logLevel: 'error',
      say,
      onOutput: (line) => {
        if (/"level":"(fatal|panic)"/.test(line)) say(`[temporal] ${line}`);
      },
    });
    return {
      kind: 'cluster',
      settings: { ...cluster.clientSettings },
      pid: cluster.process.pid!,
      stop: async () => {
        await cluster.stop();
        await dropAll();
      },
    };
  } catch (err) {
    await dropAll().catch(() => undefined);
    throw err;
  }
}
