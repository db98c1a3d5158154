import { randomBytes } from 'node:crypto';
import { createDb, dropDatabase, ensureDatabase, type Db } from '../../db/knex';
import { migrateLatest } from '../../db/migrate';
import { testEnv } from '../setup/env';

export interface ScratchDatabase {
  db: Db;
  databaseUrl: string;
  drop(): Promise<void>;
}

/**
 * A migrated database of its own beside the run's shared one, for a test whose job reads every row of a table
 * (every open task, every user): on the shared database it would see, and work through, every other test's rows.
 */
export async function createScratchDatabase(label: string): Promise<ScratchDatabase> {
  const url = new URL(testEnv().databaseUrl);
  url.pathname = `/labflow_${label}_${process.pid}_${randomBytes(3).toString('hex')}`;
  const databaseUrl = url.toString();
  await ensureDatabase(databaseUrl);
  const db = createDb(databaseUrl, 4);
  await migrateLatest(db);
  return {
    db,
    databaseUrl,
    async drop() {
      await db.destroy();
      await dropDatabase(databaseUrl);
    },
  };
}
