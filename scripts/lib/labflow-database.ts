import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { userOf, type Config, type DatabaseUrls } from '../../common/config';
import { setUpDatabase } from '../../db/database-roles';
import { createDb, type Db } from '../../db/knex';
import { seedDevUsers } from '../../db/seed-dev-users';
import { databaseName } from './database-url';
import { devUsersTable, writeDevUsersFile } from './dev-users-file';
import { say } from './say';

/**
 * Creates the database and its roles, hands an existing database (made by an earlier start, as the superuser) to
 * the owner role, migrates as the owner, and seeds the dev users as the application role, as the API would.
 */
export async function prepareDatabase(config: Config, urls: DatabaseUrls): Promise<void> {
  const name = databaseName(urls.app);
  const { created, applied } = await setUpDatabase(urls);
  say(`PostgreSQL: database "${name}" ${created ? 'created' : 'exists'}`);
  say(`PostgreSQL: roles ${userOf(urls.owner)} (migrations), ${userOf(urls.app)} (API and worker), ${userOf(urls.backup)} (backups)`);
  say(applied.length > 0 ? `PostgreSQL: applied ${applied.join(', ')}` : 'PostgreSQL: schema is up to date');
  const db = createDb(urls.app, 2);
  try {
    if (config.SEED_DEV_USERS !== false) await seedUsers(db, config);
  } finally {
    await db.destroy();
  }
}

async function seedUsers(db: Db, config: Config): Promise<void> {
  const file = join(config.DATA_DIR, 'dev-users.json');
  const seeded = await seedDevUsers(db, { beforeCommit: (users) => writeDevUsersFile(file, users) });
  if (!seeded) {
    say(
      existsSync(file)
        ? `dev users already present; their keys are in ${file}`
        : `dev users already present (created elsewhere: there is no ${file} here)`,
    );
    return;
  }
  // Terminal output ends up in scroll-back, CI logs and screen shares: it names the users and where their
  // credentials are, never the credentials.
  say(`created ${seeded.length} development users:`);
  console.log(devUsersTable(seeded));
  say(`their API keys and signing passwords are in ${file} (mode 0600: readable only by you)`);
}

