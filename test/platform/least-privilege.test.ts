import assert from 'node:assert/strict';
import { randomBytes, randomUUID } from 'node:crypto';
import { conventionalRoleNames, databaseUrlAs, databaseUrls, userOf, type DatabaseUrls } from '../../common/config';
import { appendAudit } from '../../db/audit';
import { dropRoles, ensureRoles, setUpDatabase } from '../../db/database-roles';
import { createDb, dropDatabase, ensureDatabase, type Db } from '../../db/knex';
import { migrateLatest } from '../../db/migrate';
import * as voidsMigration from '../../db/migrations/20261206040000_signature_voids_and_record_protection';
import { APPEND_ONLY_TABLES, NEVER_DELETED_TABLES } from '../../db/privileges';
import { listSignaturesFor, recordSignature, voidSignatures } from '../../db/signatures';
import { makeUser } from '../helpers/users';
import { testEnv } from '../setup/env';

/** Runs a statement and returns the Postgres error it fails with (or fails the test when it succeeds). */
async function refused(db: Db, sql: string, bindings: unknown[] = []): Promise<{ code: string; message: string }> {
  const err = await db.raw(sql, bindings as never).then(
    () => null,
    (e: { code: string; message: string }) => e,
  );
  assert.ok(err, `expected refusal: ${sql}`);
  return err;
}
const PERMISSION_DENIED = '42501';

const suffix = () => randomBytes(3).toString('hex');

/** A signature row of its own, written as the application role would write it. */
async function signOnce(db: Db, userActor: Awaited<ReturnType<typeof makeUser>>['actor'], entityId: string, round = 1) {
  return recordSignature(db, {
    idempotencyKey: `least-privilege:${entityId}:${round}`,
    entityType: 'document',
    entityId,
    workflowId: `least-privilege:${entityId}`,
    round,
    stageIndex: 0,
    stageName: 'Review',
    actor: userActor,
    signature: { meaning: 'reviewed', signedAt: new Date().toISOString(), contentHash: 'a'.repeat(64) } as never,
  });
}

describe('least privilege in PostgreSQL', () => {
  const app = () => testEnv().appDb;
  let auditSeq: number;

  before(async () => {
    const entityId = `LP-${suffix()}`;
    await appendAudit(app(), { actor: 'system:test', action: 'test.recorded', entityType: 'test', entityId, details: {} });
    auditSeq = (await testEnv().db('audit_events').where({ entity_id: entityId }).first('seq')).seq;
  });

  describe('the application role the API and the worker connect as', () => {
    it('is neither a superuser nor able to create roles or databases, and owns no table', async () => {
      const { roles } = testEnv();
      const role = (await testEnv().db('pg_roles').where({ rolname: roles.app }).first()) as Record<string, boolean>;
      assert.deepEqual([role.rolsuper, role.rolcreaterole, role.rolcreatedb, role.rolbypassrls], [false, false, false, false]);
      assert.equal((await app().raw('select current_user as u')).rows[0].u, roles.app);
      const owned = await testEnv().db.raw(
        `select c.relname from pg_class c join pg_namespace n on n.oid = c.relnamespace
          where n.nspname = 'public' and pg_get_userbyid(c.relowner) <> ?`,
        [roles.owner],
      );
      assert.deepEqual(owned.rows, [], 'every table, sequence and index belongs to the owner role');
    });

    it('cannot disable a trigger, alter or create a table, or switch triggers off for its session', async () => {
      for (const sql of [
        'alter table audit_events disable trigger audit_events_append_only',
        'alter table signatures disable trigger all',
        'alter table signatures add column forged text',
        'alter table users drop constraint users_username_key',
        'drop trigger sample_custody_append_only on sample_custody_events',
        'create table shadow_audit (seq bigint)',
        'create trigger forged before insert on audit_events for each row execute function audit_events_chain()',
        "set session_replication_role = 'replica'",
      ]) {
        const err = await refused(app(), sql);
        assert.equal(err.code, PERMISSION_DENIED, `${sql}: ${err.message}`);
      }
      const triggers = await testEnv().db.raw(`select tgname from pg_trigger where tgname = 'audit_events_append_only' and tgenabled = 'O'`);
      assert.equal(triggers.rows.length, 1, 'the trigger is still enabled');
    });

    it('cannot update, delete or truncate an audit event, and the event is unchanged', async () => {
      const before = await testEnv().db('audit_events').where({ seq: auditSeq }).first();
      for (const sql of [
        `update audit_events set actor = 'someone else' where seq = ?`,
        'delete from audit_events where seq = ?',
        'truncate audit_events',
      ]) {
        const err = await refused(app(), sql, sql.includes('?') ? [auditSeq] : []);
        assert.equal(err.code, PERMISSION_DENIED, `${sql}: ${err.message}`);
        assert.match(err.message, /permission denied for table audit_events/);
      }
      assert.deepEqual(await testEnv().db('audit_events').where({ seq: auditSeq }).first(), before);
    });

    it('cannot update or delete a custody event, a signature, a void or any other append-only record, but may add them', async () => {
      const signer = await makeUser('signer', ['reviewer'], app());
      const entityId = `LP-${suffix()}`;
      const signatureId = await signOnce(app(), signer.actor, entityId);
      const before = await testEnv().db('signatures').where({ id: signatureId }).first();
      for (const sql of [
        `update signatures set printed_name = 'Forged Name' where id = ?`,
        `update signatures set content_hash = repeat('b', 64) where id = ?`,
        'delete from signatures where id = ?',
      ]) {
        const err = await refused(app(), sql, [signatureId]);
        assert.equal(err.code, PERMISSION_DENIED, `${sql}: ${err.message}`);
      }
      assert.deepEqual(await testEnv().db('signatures').where({ id: signatureId }).first(), before);
      for (const table of APPEND_ONLY_TABLES) {
        const column = (
          await testEnv().db.raw(`select column_name from information_schema.columns where table_name = ? order by ordinal_position limit 1`, [table])
        ).rows[0].column_name;
        for (const sql of [`update ${table} set ${column} = ${column} where false`, `delete from ${table} where false`]) {
          const err = await refused(app(), sql);
          assert.match(err.message, new RegExp(`permission denied for table ${table}`), `${table}: ${err.message}`);
        }
        const privileges = await testEnv().db.raw(
          `select has_table_privilege(?, ?, 'INSERT') as ins, has_table_privilege(?, ?, 'SELECT') as sel,
                  has_table_privilege(?, ?, 'UPDATE') as upd, has_table_privilege(?, ?, 'DELETE') as del,
                  has_table_privilege(?, ?, 'TRUNCATE') as trunc`,
          Array.from({ length: 5 }, () => [testEnv().roles.app, table]).flat(),
        );
        assert.deepEqual(privileges.rows[0], { ins: true, sel: true, upd: false, del: false, trunc: false }, table);
      }
      const custody = await refused(app(), `update sample_custody_events set event = event where false`);
      assert.match(custody.message, /permission denied for table sample_custody_events/);
    });

    it('updates users and document versions but never deletes them', async () => {
      const user = await makeUser('leaver', ['author'], app());
      assert.equal(await app()('users').where({ username: user.username }).update({ active: false }), 1);
      for (const table of NEVER_DELETED_TABLES) {
        const err = await refused(app(), `delete from ${table} where false`);
        assert.match(err.message, new RegExp(`permission denied for table ${table}`));
      }
      // The database refuses it even to the superuser: triggers, not only privileges.
      const err = await refused(testEnv().db, 'delete from users where username = ?', [user.username]);
      assert.match(err.message, /users are never deleted/);
      const renamed = await refused(testEnv().db, `update users set username = 'someone' where username = ?`, [user.username]);
      assert.match(renamed.message, /keeps their id and username/);
    });

    it('has every table with an append-only trigger on its append-only list, and no other', async () => {
      const withTrigger = await testEnv().db.raw(
        `select distinct c.relname from pg_trigger t join pg_class c on c.oid = t.tgrelid where t.tgname like '%\\_append\\_only' order by 1`,
      );
      assert.deepEqual(
        withTrigger.rows.map((r: { relname: string }) => r.relname),
        [...APPEND_ONLY_TABLES].sort(),
      );
    });
  });

  describe('the read-only role backups run as', () => {
    let backup: Db;
    before(() => {
      backup = createDb(testEnv().backupDatabaseUrl, 1);
    });
    after(() => backup.destroy());

    it('reads every table but writes nothing and alters nothing', async () => {
      assert.ok(Number((await backup('audit_events').count({ n: '*' }).first())?.n) > 0);
      assert.ok(Number((await backup('knex_migrations').count({ n: '*' }).first())?.n) > 0);
      for (const sql of [
        `insert into audit_events (actor, action, entity_type, entity_id) values ('x', 'x', 'x', 'x')`,
        `update users set active = false where false`,
        `delete from tasks where false`,
        `alter table tasks add column forged text`,
        `create table forged (id int)`,
        `select nextval('document_number_seq')`,
      ]) {
        const err = await refused(backup, sql);
        assert.equal(err.code, PERMISSION_DENIED, `${sql}: ${err.message}`);
      }
      const role = await testEnv().db('pg_roles').where({ rolname: testEnv().roles.backup }).first();
      assert.equal(role.rolsuper, false);
    });

    it('reads what the owner creates at run time: the year sequence of CAPA numbers the application role asks for', async () => {
      const year = 2100 + (randomBytes(1).readUInt8() % 90);
      const { rows } = await app().raw('select next_capa_number(?) as number', [year]);
      assert.match(rows[0].number, new RegExp(`^CAPA-${year}-\\d{4}$`));
      const read = await backup.raw(`select last_value from ${'capa_number_seq_' + year}`);
      assert.ok(Number(read.rows[0].last_value) >= 1, 'a dump can read the sequence');
    });
  });

  describe('voiding a signature', () => {
    it('adds a void row that references the signature and leaves the signature row as it was signed', async () => {
      const signer = await makeUser('voided', ['reviewer'], app());
      const entityId = `LP-${suffix()}`;
      const first = await signOnce(app(), signer.actor, entityId, 1);
      const second = await signOnce(app(), signer.actor, entityId, 2);
      const before = await testEnv().db('signatures').whereIn('id', [first, second]).orderBy('round');
      const where = { entityType: 'document', entityId, workflowId: `least-privilege:${entityId}`, beforeRound: 2 };

      assert.equal(await voidSignatures(app(), where, 'content revised for round 2'), 1);
      assert.equal(await voidSignatures(app(), where, 'content revised for round 2'), 0, 'a retried void voids nothing twice');

      assert.deepEqual(await testEnv().db('signatures').whereIn('id', [first, second]).orderBy('round'), before);
      const voids = await testEnv().db('signature_voids').whereIn('signature_id', [first, second]);
      assert.deepEqual(
        voids.map((v) => [v.signature_id, v.reason]),
        [[first, 'content revised for round 2']],
      );
      const listed = await listSignaturesFor(app(), 'document', entityId);
      assert.deepEqual(
        listed.map((s) => [s.round, s.void, s.void_reason]),
        [
          [1, true, 'content revised for round 2'],
          [2, false, null],
        ],
      );
      // Not even the superuser rewrites a signature without first disabling the trigger.
      const err = await refused(testEnv().db, `update signatures set printed_name = 'x' where id = ?`, [first]);
      assert.match(err.message, /signatures is append-only/);
    });

    it('moves signatures voided by an UPDATE before the migration into void rows', async () => {
      const url = new URL(testEnv().databaseUrl);
      url.pathname = `/labflow_voids_${process.pid}_${suffix()}`;
      const scratchUrl = url.toString();
      await ensureDatabase(scratchUrl);
      const db = createDb(scratchUrl, 1);
      try {
        await migrateLatest(db);
        await voidsMigration.down(db); // the schema as it was: a void flag on the signature row
        const signer = await makeUser('old', ['reviewer'], db);
        const ids = [randomUUID(), randomUUID()];
        for (const [i, id] of ids.entries()) {
          await db('signatures').insert({
            id,
            idempotency_key: `old:${i}`,
            entity_type: 'document',
            entity_id: 'DOC-OLD',
            workflow_id: 'document-approval:DOC-OLD:v1',
            round: i + 1,
            stage_index: 0,
            stage_name: 'Review',
            user_id: signer.actor.userId,
            username: signer.username,
            printed_name: 'Old Signer',
            meaning: 'reviewed',
            signed_at: '2026-11-01T10:00:00Z',
            content_hash: 'c'.repeat(64),
            void: i === 0,
            voided_at: i === 0 ? '2026-11-02T10:00:00Z' : null,
            void_reason: i === 0 ? 'content revised for round 2' : null,
          });
        }
        await voidsMigration.up(db);
        const voids = await db('signature_voids').select('signature_id', 'voided_at', 'reason');
        assert.deepEqual(voids, [{ signature_id: ids[0], voided_at: new Date('2026-11-02T10:00:00Z'), reason: 'content revised for round 2' }]);
        const columns = (await db.raw(`select column_name from information_schema.columns where table_name = 'signatures'`)).rows.map(
          (r: { column_name: string }) => r.column_name,
        );
        assert.ok(!columns.includes('void') && !columns.includes('voided_at'), columns.join(','));
      } finally {
        await db.destroy();
        await dropDatabase(scratchUrl);
      }
    });
  });

  describe('setting the roles up', () => {
    it('moves a database made as the superuser before the roles existed onto them, keeping its rows', async () => {
      const url = new URL(testEnv().databaseUrl);
      url.pathname = `/labflow_handover_${process.pid}_${suffix()}`;
      const scratchUrl = url.toString();
      await ensureDatabase(scratchUrl);
      const old = createDb(scratchUrl, 1);
      const { roles } = testEnv();
      const urls: DatabaseUrls = {
        admin: scratchUrl,
        owner: databaseUrlAs(scratchUrl, roles.owner),
        app: databaseUrlAs(scratchUrl, roles.app),
        backup: databaseUrlAs(scratchUrl, roles.backup),
      };
      const asApp = createDb(urls.app, 1);
      try {
        await migrateLatest(old); // as an earlier npm start did: everything owned by the superuser
        const earlier = await makeUser('earlier', ['author'], old);
        const report = await setUpDatabase(urls);
        assert.deepEqual(report.applied, []);
        const notOwned = await old.raw(
          `select c.relname from pg_class c join pg_namespace n on n.oid = c.relnamespace
            where n.nspname = 'public' and pg_get_userbyid(c.relowner) <> ?
           union all
           select p.proname from pg_proc p join pg_namespace n on n.oid = p.pronamespace
            where n.nspname = 'public' and pg_get_userbyid(p.proowner) <> ?`,
          [roles.owner, roles.owner],
        );
        assert.deepEqual(notOwned.rows, []);
        assert.equal((await old.raw('select pg_get_userbyid(datdba) as o from pg_database where datname = current_database()')).rows[0].o, roles.owner);
        assert.equal((await asApp('users').where({ username: earlier.username }).first('username')).username, earlier.username);
        await makeUser('later', ['author'], asApp);
        const err = await refused(asApp, 'delete from audit_events where false');
        assert.equal(err.code, PERMISSION_DENIED);
      } finally {
        await asApp.destroy();
        await old.destroy();
        await dropDatabase(scratchUrl);
      }
    });

    it('creates the same roles from several setups at once without tripping over each other', async () => {
      const database = `labflow_race_${process.pid}_${suffix()}`;
      const url = new URL(testEnv().databaseUrl);
      url.pathname = `/${database}`;
      const names = conventionalRoleNames(url.toString());
      const urls = {
        owner: databaseUrlAs(url.toString(), names.owner),
        app: databaseUrlAs(url.toString(), names.app),
        backup: databaseUrlAs(url.toString(), names.backup),
      };
      try {
        await Promise.all(Array.from({ length: 4 }, () => ensureRoles(testEnv().databaseUrl, urls)));
        const made = await testEnv().db('pg_roles').whereIn('rolname', Object.values(names)).orderBy('rolname').select('rolname', 'rolcreatedb');
        assert.deepEqual(made, [
          { rolname: names.app, rolcreatedb: false },
          { rolname: names.backup, rolcreatedb: true },
          { rolname: names.owner, rolcreatedb: false },
        ]);
      } finally {
        assert.deepEqual(await dropRoles(testEnv().databaseUrl, Object.values(names)), []);
      }
    });

    it('derives the owner, backup and admin connections from DATABASE_URL for local development', () => {
      const local = databaseUrls({ DATABASE_URL: 'postgres://postgres:pw@127.0.0.1:5432/labflow' });
      assert.deepEqual(local, {
        app: 'postgres://labflow_app:pw@127.0.0.1:5432/labflow',
        owner: 'postgres://labflow_owner:pw@127.0.0.1:5432/labflow',
        backup: 'postgres://labflow_backup:pw@127.0.0.1:5432/labflow',
        admin: 'postgres://postgres:pw@127.0.0.1:5432/labflow',
      });
      const explicit = databaseUrls({
        DATABASE_URL: 'postgres://lab_app:a@db:5432/lims',
        MIGRATION_DATABASE_URL: 'postgres://lab_owner:o@db:5432/lims',
        BACKUP_DATABASE_URL: 'postgres://lab_backup:b@db:5432/lims',
      });
      assert.deepEqual(
        [explicit.app, explicit.owner, explicit.backup].map(userOf),
        ['lab_app', 'lab_owner', 'lab_backup'],
      );
      assert.equal(explicit.admin, 'postgres://postgres@db:5432/lims');
    });
  });
});
