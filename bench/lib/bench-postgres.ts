import { chmodSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { freePort } from '../../scripts/lib/free-port';
import { startPrivatePostgres } from '../../scripts/lib/private-postgres';

/**
 * A PostgreSQL of the bench's own (initdb in a temporary directory, a free port, trust authentication), so that the
 * Temporal cluster's connection pools and labflow's do not compete with other work for a shared server's
 * connections; max_connections raised to `maxConnections`. Returns its superuser URL; stop() removes it entirely.
 */
export async function startBenchPostgres(maxConnections: number): Promise<{ adminUrl: string; stop(): Promise<void> }> {
  const root = mkdtempSync(join(tmpdir(), 'labflow-bench-pg-'));
  // initdb and postgres run as the postgres user when this runs as root: it must reach the directory.
  chmodSync(root, 0o755);
  const options = { dataDir: join(root, 'data'), logFile: join(root, 'postgres.log'), port: await freePort() };
  let server: Awaited<ReturnType<typeof startPrivatePostgres>> | undefined;
  const stop = async () => {
    await server?.stop().catch(() => undefined);
    rmSync(root, { recursive: true, force: true });
  };
  try {
    server = await startPrivatePostgres(options);
    const admin = new pg.Client({ connectionString: server.url('postgres') });
    await admin.connect();
    await admin.query(`ALTER SYSTEM SET max_connections = ${Number(maxConnections)}`);
    await admin.end();
    await server.stop();
    server = await startPrivatePostgres(options);
    return { adminUrl: server.url('postgres'), stop };
  } catch (err) {
    await stop();
    throw err;
  }
}
