/** `npm run migrate`, and the one-shot labflow-setup service in docker-compose.yml: create the database, migrate it. */
import { loadConfig } from '../common/config';
import { createDb, ensureDatabase } from '../db/knex';
import { migrateLatest } from '../db/migrate';
import { databaseName, describeUrl } from './lib/database-url';

async function main(): Promise<void> {
  const config = loadConfig();
  const name = databaseName(config.DATABASE_URL);
  console.log(`[migrate] ${describeUrl(config.DATABASE_URL)}`);
  console.log(`[migrate] database "${name}" ${(await ensureDatabase(config.DATABASE_URL)) ? 'created' : 'exists'}`);
  const db = createDb(config.DATABASE_URL, 1);
  try {
    const applied = await migrateLatest(db);
    if (applied.length === 0) console.log('[migrate] schema is up to date');
    for (const migration of applied) console.log(`[migrate] applied ${migration}`);
  } finally {
    await db.destroy();
  }
}

main().catch((err: unknown) => {
  console.error('[migrate] failed:', err instanceof Error ? err.message : err);
  process.exit(1);
});
