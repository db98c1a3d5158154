import knex, { type Knex } from 'knex';
import pg from 'pg';
import { postgresConnection } from './postgres-tls';

// Return bigint counts and sequence values as numbers; they stay far below 2^53 here.
pg.types.setTypeParser(pg.types.builtins.INT8, (value: string) => Number(value));
// A calendar date (a date of birth) stays the text Postgres sends, 'YYYY-MM-DD': the driver's default turns it into
// local midnight, which a host east of UTC prints as the day before.
pg.types.setTypeParser(pg.types.builtins.DATE, (value: string) => value);

export type Db = Knex;

export function createDb(databaseUrl: string, poolMax = 10): Db {
  return knex({
    client: 'pg',
    connection: { ...postgresConnection(databaseUrl), application_name: 'labflow' },
    pool: { min: 0, max: poolMax },
  });
}

/** Connects to the server's maintenance database, for creating and dropping labflow's own. */
export function maintenanceUrl(databaseUrl: string): { url: string; database: string } {
  const url = new URL(databaseUrl);
  const database = decodeURIComponent(url.pathname.replace(/^\//, ''));
  url.pathname = '/postgres';
  return { url: url.toString(), database };
}

export async function ensureDatabase(databaseUrl: string): Promise<boolean> {
  const { url, database } = maintenanceUrl(databaseUrl);
  const admin = createDb(url, 1);
  try {
    const exists = await admin.raw('select 1 from pg_database where datname = ?', [database]);
    if (exists.rows.length > 0) return false;
    await admin.raw('create database ??', [database]);
    return true;
  } finally {
    await admin.destroy();
  }
}

export async function dropDatabase(databaseUrl: string): Promise<void> {
  const { url, database } = maintenanceUrl(databaseUrl);
  const admin = createDb(url, 1);
  try {
    await admin.raw('drop database if exists ?? with (force)', [database]);
  } finally {
    await admin.destroy();
  }
}
