/**
 * `npm run migrate`, and the one-shot labflow-setup service in docker-compose.yml: create the database and its roles
 * (as DATABASE_ADMIN_URL), migrate it as the owner role and grant the application and backup roles their privileges
 * (common/config.ts says which URL is which).
 */
import { databaseUrls, loadConfig, userOf } from '../common/config';
import { setUpDatabase } from '../db/database-roles';
import { databaseName, describeUrl } from './lib/database-url';

async function main(): Promise<void> {
  const config = loadConfig();
  const urls = databaseUrls(config);
  const name = databaseName(urls.app);
  console.log(`[migrate] ${describeUrl(urls.owner)}`);
  const report = await setUpDatabase(urls, {
    // An admin that was asked for must answer; the derived one may be absent where a DBA made the roles.
    adminRequired: config.DATABASE_ADMIN_URL !== undefined || urls.admin === config.DATABASE_URL,
    onAdminUnavailable: (why) => console.log(`[migrate] no admin connection (${why}); the database and its roles must exist`),
  });
  if (report.rolesSetUp) {
    console.log(`[migrate] database "${name}" ${report.created ? 'created' : 'exists'}`);
    console.log(`[migrate] roles ${userOf(urls.owner)}, ${userOf(urls.app)}, ${userOf(urls.backup)} are set up`);
  }
  if (report.applied.length === 0) console.log('[migrate] schema is up to date');
  for (const migration of report.applied) console.log(`[migrate] applied ${migration}`);
  console.log(`[migrate] privileges granted to ${userOf(urls.app)} and ${userOf(urls.backup)}`);
}

main().catch((err: unknown) => {
  console.error('[migrate] failed:', err instanceof Error ? err.message : err);
  process.exit(1);
});
