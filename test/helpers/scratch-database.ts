import { randomBytes } from 'node:crypto';
import { databaseUrlAs } from '../../common/config';
import { setUpDatabase } from '../../db/database-roles';
import { createDb, dropDatabase, type Db } from '../../db/knex';
import { testEnv } from '../setup/env';

export interface ScratchDatabase {
  db: Db;
  databaseUrl: string;
  drop(): Promise<void>;
}

/**
 * A migrated database of its own beside the run's shared one, for a test whose job reads every row of a table
 * (every open task, every user): on the shared database it would see, and work through, every other test's rows.
 * It is set up like the shared one, owned by the run's owner role and granted to the run's application and backup
 * roles; `db` is the superuser's hand, as testEnv().db is.
 */
export async function createScratchDatabase(label: string): Promise<ScratchDatabase> {
  const url = new URL(testEnv().databaseUrl);
  url.pathname = `/labflow_${label}_${process.pid}_${randomBytes(3).toString('hex')}`;
  const databaseUrl = url.toString();
  const { roles } = testEnv();
  await setUpDatabase({
    admin: databaseUrl,
    owner: databaseUrlAs(databaseUrl, roles.owner),
    app: databaseUrlAs(databaseUrl, roles.app),
    backup: databaseUrlAs(databaseUrl, roles.backup),
  });
  const db = createDb(databaseUrl, 4);
  return {
    db,
    databaseUrl,
    async drop() {
      await db.destroy();
      await dropDatabase(databaseUrl);
    },
  };
}
