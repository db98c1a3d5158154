import pg from 'pg';
import { userOf, type DatabaseUrls } from '../common/config';
import { createDb, ensureDatabase, maintenanceUrl } from './knex';
import { migrateLatest } from './migrate';
import { postgresConnection } from './postgres-tls';
import { grantPrivileges } from './privileges';

/** One login role: its name and, when its URL carries one, its password. */
interface Login {
  name: string;
  password: string | null;
}

const loginOf = (databaseUrl: string): Login => {
  const url = new URL(databaseUrl);
  return { name: decodeURIComponent(url.username), password: url.password ? decodeURIComponent(url.password) : null };
};

/** Roles are cluster-wide: every labflow setup on a server takes this lock (in the maintenance database) first. */
const ROLES_LOCK = "select pg_advisory_xact_lock(hashtext('labflow.database_roles'))";

const quote = (client: pg.ClientBase, name: string) => client.escapeIdentifier(name);

async function withAdmin<T>(adminUrl: string, work: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ ...postgresConnection(maintenanceUrl(adminUrl).url), application_name: 'labflow-setup' });
  await client.connect();
  try {
    return await work(client);
  } finally {
    await client.end();
  }
}

/**
 * Creates the owner, application and backup roles if they are missing, and sets the password of each whose URL
 * carries one. Several setups may run at once on one server (parallel test runs, a start beside a migrate): they
 * queue on an advisory lock, and a CREATE ROLE that still meets a twin is taken as done.
 */
export async function ensureRoles(adminUrl: string, urls: Pick<DatabaseUrls, 'owner' | 'app' | 'backup'>): Promise<void> {
  const roles: [Login, string][] = [
    [loginOf(urls.owner), 'login nosuperuser nocreatedb nocreaterole inherit'],
    [loginOf(urls.app), 'login nosuperuser nocreatedb nocreaterole inherit'],
    // The restore drill restores into a scratch database of its own: the one thing the backup role may create. It
    // inherits (as every role here does) the rights of pg_database_owner there, which owns the public schema.
    [loginOf(urls.backup), 'login nosuperuser createdb nocreaterole inherit'],
  ];
  await withAdmin(adminUrl, async (client) => {
    await client.query('begin');
    try {
      await client.query(ROLES_LOCK);
      for (const [login, attributes] of roles) {
        const name = quote(client, login.name);
        const exists = await client.query('select 1 from pg_roles where rolname = $1', [login.name]);
        if (exists.rowCount === 0) {
          await client.query('savepoint create_role');
          try {
            await client.query(`create role ${name} ${attributes}`);
            await client.query('release savepoint create_role');
          } catch (err) {
            // duplicate_object, or unique_violation when another session's CREATE ROLE committed meanwhile.
            if (!['42710', '23505'].includes((err as { code?: string }).code ?? '')) throw err;
            await client.query('rollback to savepoint create_role');
          }
        }
        await client.query(`alter role ${name} ${attributes}`);
        if (login.password !== null) await client.query(`alter role ${name} password ${client.escapeLiteral(login.password)}`);
      }
      await client.query('commit');
    } catch (err) {
      await client.query('rollback').catch(() => undefined);
      throw err;
    }
  });
}

/**
 * Makes the owner role the owner of the database and of every labflow object in it: a database made before the
 * roles existed (by an earlier `npm start`, as the superuser) is moved onto them. Sequences that belong to a table
 * column follow their table.
 */
export async function handOverDatabase(adminUrl: string, databaseUrl: string, owner: string): Promise<void> {
  const database = maintenanceUrl(databaseUrl).database;
  await withAdmin(adminUrl, (client) => client.query(`alter database ${quote(client, database)} owner to ${quote(client, owner)}`));
  const url = new URL(adminUrl);
  url.pathname = `/${encodeURIComponent(database)}`;
  const client = new pg.Client({ ...postgresConnection(url.toString()), application_name: 'labflow-setup' });
  await client.connect();
  try {
    const role = quote(client, owner);
    await client.query('begin');
    await client.query(`grant usage, create on schema public to ${role}`);
    await client.query('revoke create on schema public from public');
    const objects = await client.query<{ kind: string; name: string }>(
      `select case c.relkind when 'S' then 'sequence' when 'v' then 'view' when 'm' then 'materialized view' else 'table' end as kind,
              quote_ident(c.relname) as name
         from pg_class c join pg_namespace n on n.oid = c.relnamespace
        where n.nspname = 'public' and c.relkind in ('r', 'p', 'v', 'm', 'S')
          and c.relowner <> (select oid from pg_roles where rolname = $1)
          and not exists (select 1 from pg_depend d where d.classid = 'pg_class'::regclass and d.objid = c.oid
                          and d.deptype in ('a', 'i') and d.refclassid = 'pg_class'::regclass)
        order by c.relkind = 'S', 2`,
      [owner],
    );
    for (const o of objects.rows) await client.query(`alter ${o.kind} ${o.name} owner to ${role}`);
    const functions = await client.query<{ signature: string }>(
      `select p.oid::regprocedure::text as signature from pg_proc p join pg_namespace n on n.oid = p.pronamespace
        where n.nspname = 'public' and p.proowner <> (select oid from pg_roles where rolname = $1)`,
      [owner],
    );
    for (const f of functions.rows) await client.query(`alter function ${f.signature} owner to ${role}`);
    await client.query('commit');
  } catch (err) {
    await client.query('rollback').catch(() => undefined);
    throw err;
  } finally {
    await client.end();
  }
}

export interface SetupReport {
  created: boolean;
  /** False when the admin connection was not available and the roles were taken as they are. */
  rolesSetUp: boolean;
  applied: string[];
}

/**
 * The whole setup of one database: as the admin (when it can connect), create the database and the roles and hand
 * the database to the owner; then, as the owner, migrate and grant the application and backup roles their
 * privileges. `npm start`, `npm run migrate` and the test harness all come through here.
 */
export async function setUpDatabase(
  urls: DatabaseUrls,
  options: { adminRequired?: boolean; onAdminUnavailable?: (why: string) => void } = {},
): Promise<SetupReport> {
  let created = false;
  let rolesSetUp = false;
  try {
    created = await ensureDatabase(withPath(urls.admin, urls.app));
    rolesSetUp = true;
  } catch (err) {
    if (options.adminRequired !== false) throw err;
    options.onAdminUnavailable?.((err as Error).message);
  }
  if (rolesSetUp) {
    await ensureRoles(urls.admin, urls);
    await handOverDatabase(urls.admin, urls.app, userOf(urls.owner));
  }
  const owner = createDb(urls.owner, 1);
  try {
    const applied = await migrateLatest(owner);
    await grantPrivileges(owner, { app: userOf(urls.app), backup: userOf(urls.backup) });
    return { created, rolesSetUp, applied };
  } finally {
    await owner.destroy();
  }
}

/** Drops roles a test run created, once their databases are gone; a role still in use somewhere is left. */
export async function dropRoles(adminUrl: string, names: string[]): Promise<string[]> {
  const left: string[] = [];
  await withAdmin(adminUrl, async (client) => {
    for (const name of names) {
      try {
        await client.query(`drop role if exists ${quote(client, name)}`);
      } catch {
        left.push(name);
      }
    }
  });
  return left;
}

/** adminUrl's server and credentials, databaseUrl's database. */
function withPath(adminUrl: string, databaseUrl: string): string {
  const url = new URL(adminUrl);
  url.pathname = new URL(databaseUrl).pathname;
  return url.toString();
}
