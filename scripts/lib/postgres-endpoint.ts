import { join } from 'node:path';
import pg from 'pg';
import { databaseUrls, type Config, type DatabaseUrls } from '../../common/config';
import { maintenanceUrl } from '../../db/knex';
import { postgresConnection } from '../../db/postgres-tls';
import { databaseName, describeUrl } from './database-url';
import { findPostgresTools, startPrivatePostgres, type PrivatePostgres } from './private-postgres';
import { say, StartError } from './say';

export interface PostgresEndpoint {
  /** The connections of each role (common/config.ts), pointing at the server that answered. */
  urls: DatabaseUrls;
  /** Set when this start runs the private cluster and so must stop it. */
  privateCluster: PrivatePostgres | null;
}

/** Errors that mean "no server there", as opposed to a server that answered and refused. */
const NOT_ANSWERING = new Set(['ECONNREFUSED', 'ENOENT', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENETUNREACH', 'EADDRNOTAVAIL', 'ECONNRESET']);

/**
 * DATABASE_URL's server when it answers (asked as the admin that sets the database up); otherwise (PRIVATE_PG=auto)
 * a private cluster under DATA_DIR, and every role's URL derived from DATABASE_URL rewritten to point at it.
 * PRIVATE_PG=true always uses the private cluster, as TEMPORAL_DEV_SERVER=true always starts the dev server.
 */
export async function providePostgres(config: Config): Promise<PostgresEndpoint> {
  const configured = databaseUrls(config);
  const target = describeUrl(configured.admin);
  if (config.PRIVATE_PG !== true) {
    const probe = await probePostgres(configured.admin);
    if (probe.answers) {
      say(`PostgreSQL: using ${target}`);
      return { urls: configured, privateCluster: null };
    }
    if (config.PRIVATE_PG === false) {
      throw new StartError(`PostgreSQL does not answer at ${target} (${probe.why}); start it, fix DATABASE_URL, or set PRIVATE_PG=auto`);
    }
    if (!findPostgresTools()) {
      throw new StartError(`PostgreSQL does not answer at ${target} (${probe.why}), and initdb is not installed to run a private cluster`);
    }
    say(`PostgreSQL: nothing answers at ${target}; using a private cluster instead`);
  }
  const cluster = await startPrivatePostgres({
    dataDir: join(config.DATA_DIR, 'pg'),
    logFile: join(config.DATA_DIR, 'pg.log'),
    port: config.PRIVATE_PG_PORT,
  });
  return { urls: databaseUrls({ DATABASE_URL: cluster.url(databaseName(config.DATABASE_URL)) }), privateCluster: cluster };
}

/** Connects to the server's maintenance database: labflow's own may not exist yet. */
async function probePostgres(databaseUrl: string): Promise<{ answers: true } | { answers: false; why: string }> {
  const client = new pg.Client({ ...postgresConnection(maintenanceUrl(databaseUrl).url), connectionTimeoutMillis: 3000 });
  try {
    await client.connect();
    await client.query('select 1');
    return { answers: true };
  } catch (err) {
    const error = err as NodeJS.ErrnoException;
    if ((error.code && NOT_ANSWERING.has(error.code)) || /timeout/i.test(error.message)) {
      return { answers: false, why: error.code ?? error.message };
    }
    throw new StartError(`PostgreSQL at ${describeUrl(databaseUrl)} answered but refused the connection: ${error.message}`);
  } finally {
    await client.end().catch(() => undefined);
  }
}
