import { conventionalRoleNames, databaseUrlAs, type DatabaseUrls } from '../../common/config';
import { dropRoles, setUpDatabase } from '../../db/database-roles';
import { dropDatabase } from '../../db/knex';

/**
 * A bench's database, set up as `npm start` sets one up: its own roles (named after it), migrated as the owner,
 * the worker and the API on the application role. `databaseUrl` is the superuser's; drop() removes database and roles.
 */
export async function createBenchDatabase(databaseUrl: string): Promise<{ urls: DatabaseUrls; drop(): Promise<void> }> {
  const names = conventionalRoleNames(databaseUrl);
  const urls: DatabaseUrls = {
    admin: databaseUrl,
    owner: databaseUrlAs(databaseUrl, names.owner),
    app: databaseUrlAs(databaseUrl, names.app),
    backup: databaseUrlAs(databaseUrl, names.backup),
  };
  const drop = async () => {
    await dropDatabase(databaseUrl);
    await dropRoles(databaseUrl, Object.values(names));
  };
  try {
    await setUpDatabase(urls);
  } catch (err) {
    await drop().catch(() => undefined);
    throw err;
  }
  return { urls, drop };
}
