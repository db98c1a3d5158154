import assert from 'node:assert/strict';
import { randomBytes, randomUUID } from 'node:crypto';
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, readdir, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { WorkflowFailedError } from '@temporalio/client';
import { ApplicationFailure } from '@temporalio/common';
import { decryptFile, pgTarget, readKeyFile, runTool, sha256File, withDatabase } from '../../activities/backup-tools';
import type { BackupInput, BackupResult, BackupSettings, RestoreDrillResult } from '../../common/scheduled-work';
import { dropDatabase } from '../../db/knex';
import { reconcileSchedules, scheduleDefinitions } from '../../workers/schedules';
import { startPlatform, type Platform } from '../helpers/platform';
import { makeUsers, type TestUser } from '../helpers/users';
import { waitFor } from '../helpers/wait';
import { testEnv } from '../setup/env';
import { testBackupSettings, uniqueSuffix } from './support';

const run = promisify(execFile);

describe('the nightly backup', () => {
  let p: Platform;
  let users: Record<'ops' | 'qa' | 'author', TestUser>;
  let settings: BackupSettings;
  let keyFile: string;
  let firstBackup: BackupResult;

  before(async () => {
    p = await startPlatform();
    users = await makeUsers({ ops: ['it_operator'], qa: ['qa_manager'], author: ['author'] });
    settings = await testBackupSettings();
    keyFile = join(settings.dir, '..', 'backup.key');
    await writeFile(keyFile, randomBytes(32).toString('hex'));
    settings = { ...settings, encryptionKeyFile: keyFile };
  });
  after(() => p.stop());

  const backup = (input: Partial<BackupInput> & { settings?: BackupSettings } = {}) =>
    testEnv().client.workflow.execute('backupWorkflow', {
      workflowId: `backup:test-${uniqueSuffix()}`,
      taskQueue: p.taskQueue,
      args: [{ settings, trigger: 'manual', ...input } satisfies BackupInput],
    }) as Promise<BackupResult>;
  const row = (id: string) => testEnv().db('backups').where({ id }).first();

  it('dumps the real database, verifies it, encrypts it at rest and proves the off-site copy', async () => {
    firstBackup = await backup();
    assert.equal(firstBackup.state, 'verified');
    const b = await row(firstBackup.backupId);
    assert.equal(b.state, 'verified');
    assert.equal(b.database_name, pgTarget(testEnv().databaseUrl).database);
    assert.match(b.server_version, /^\d+/);
    assert.match(b.pg_dump_version, /^\d+\.\d+$/);
    assert.ok(b.toc_entries > 20, `TOC entries: ${b.toc_entries}`);
    assert.equal(b.encrypted, true);
    assert.equal(b.key_fingerprint, (await readKeyFile(keyFile)).fingerprint);
    assert.equal(b.dump_path, join(settings.dir, `${b.id}.dump.enc`));
    assert.equal(existsSync(join(settings.dir, `${b.id}.dump`)), false, 'no plaintext dump stays at rest');
    assert.equal(await sha256File(b.dump_path), b.stored_sha256);
    assert.equal(await sha256File(b.offsite_path), b.stored_sha256);
    assert.ok(b.offsite_verified_at);
    assert.ok(b.globals_path.endsWith('.globals.sql.enc') && existsSync(b.offsite_globals_path));
    // The encrypted file decrypts to exactly the dump that was hashed and listed.
    const plain = join(settings.dir, 'check.dump');
    await decryptFile(b.dump_path, plain, (await readKeyFile(keyFile)).key);
    assert.equal(await sha256File(plain), b.dump_sha256);
    let listed = 0;
    await runTool('pg_restore', ['--list', plain], { onLine: (l) => (listed += l && !l.startsWith(';') ? 1 : 0) });
    assert.equal(listed, b.toc_entries);
    assert.deepEqual(
      (await testEnv().db('audit_events').where({ entity_type: 'backup', entity_id: b.id }).orderBy('seq')).map((e) => e.action),
      ['backup.started', 'backup.verified', 'backup.retention_applied'],
    );
  });

  it('restores the latest verified backup in the weekly drill, with smoke queries and the restore time, and drops the scratch database', async () => {
    const result = (await testEnv().client.workflow.execute('restoreDrillWorkflow', {
      workflowId: `restore-drill:test-${uniqueSuffix()}`,
      taskQueue: p.taskQueue,
      args: [{ settings }],
    })) as RestoreDrillResult;
    assert.equal(result.ok, true, result.failure ?? '');
    assert.equal(result.backupId, firstBackup.backupId);
    assert.equal(result.auditChainOk, true);
    assert.ok(result.rowCounts.audit_events > 0 && result.rowCounts.users > 0, JSON.stringify(result.rowCounts));
    assert.ok(result.restoreMs > 0);
    const drill = await testEnv().db('restore_drills').where({ id: result.drillId }).first();
    assert.equal(drill.ok, true);
    assert.equal(drill.restore_ms, result.restoreMs);
    const scratch = await testEnv().db.raw(`select datname from pg_database where datname like 'labflow_restore_drill_%'`);
    assert.deepEqual(scratch.rows, []);
  });

  it('restores a backup into a new database with npm run restore, and refuses an existing one', async () => {
    const into = `labflow_restore_test_${uniqueSuffix()}`;
    const env = {
      ...process.env,
      DATABASE_URL: testEnv().databaseUrl,
      BACKUP_ENCRYPTION_KEY_FILE: keyFile,
      BACKUP_DIR: settings.dir,
      LOG_LEVEL: 'silent',
    };
    try {
      const { stdout } = await run('npm', ['run', '--silent', 'restore', '--', firstBackup.backupId, '--into', into], {
        env,
        cwd: join(__dirname, '..', '..'),
      });
      assert.match(stdout, /✔ restored in .* audit chain intact/);
      const again = await run('npm', ['run', '--silent', 'restore', '--', firstBackup.backupId, '--into', into], {
        env,
        cwd: join(__dirname, '..', '..'),
      }).catch((err) => err);
      assert.equal(again.code, 2);
      assert.match(again.stderr, /already exists/);
    } finally {
      await dropDatabase(withDatabase(testEnv().databaseUrl, into));
    }
  });

  it('records a pg_dump failure (wrong credentials) as a failed backup that never counts, and tells IT operators', async () => {
    const verifiedBefore = await testEnv().db('backups').where({ state: 'verified' }).count({ n: '*' }).first();
    const failed = await backup({ settings: { ...settings, pgUser: `labflow_no_such_role_${uniqueSuffix()}` } }).catch((err) => err);
    assert.ok(failed instanceof WorkflowFailedError);
    const b = await testEnv().db('backups').where({ state: 'failed' }).orderBy('started_at', 'desc').first();
    assert.match(b.failure, /pg_dump exited with 1: .*role .* does not exist/);
    assert.equal(b.dump_path, null);
    assert.deepEqual(
      (await readdir(settings.dir)).filter((f) => f.startsWith(b.id)),
      [],
      'no file of a failed backup is left',
    );
    // Not retried: the error is about credentials, which trying again cannot fix.
    const history = await testEnv().client.workflow.getHandle(b.workflow_id).fetchHistory();
    const attempts = history.events!.flatMap((e) =>
      e.activityTaskStartedEventAttributes ? [e.activityTaskStartedEventAttributes.attempt] : [],
    );
    assert.ok(attempts.length >= 3 && attempts.every((a) => a === 1), `attempts: ${attempts.join(',')}`);
    const verifiedAfter = await testEnv().db('backups').where({ state: 'verified' }).count({ n: '*' }).first();
    assert.deepEqual(verifiedAfter, verifiedBefore);
    const note = await testEnv()
      .db('notifications as n')
      .join('users as u', 'u.id', 'n.user_id')
      .where({ 'u.username': users.ops.username, 'n.kind': 'backup.failed' })
      .first('n.body');
    assert.match(note.body, new RegExp(b.id));
    await waitFor(
      () => testEnv().mails.find((m) => m.to.includes(`${users.ops.username}@lab.test`) && /Backup failed/.test(m.subject ?? '')),
      'the failure email',
    );
  });

  it('applies grandfather-father-son retention across simulated dates only after the newest backup verified, sparing a legal hold', async () => {
    const db = testEnv().db;
    await db('restore_drills').del();
    await db('backups').del();
    const seededDir = join(settings.dir, 'seeded');
    await mkdir(seededDir, { recursive: true });
    // Verified nightly backups every day from 2026-07-01 to 2026-10-31 (01:00Z), each with a file on disk.
    const seeded: { id: string; day: string; path: string }[] = [];
    for (let t = Date.parse('2026-07-01T01:00:00Z'); t <= Date.parse('2026-10-31T01:00:00Z'); t += 86_400_000) {
      const id = randomUUID();
      const path = join(seededDir, `${id}.dump`);
      await writeFile(path, 'x');
      seeded.push({ id, day: new Date(t).toISOString().slice(0, 10), path });
    }
    const held = seeded.find((s) => s.day === '2026-07-15')!;
    await db('backups').insert(
      seeded.map((s) => ({
        id: s.id,
        workflow_id: `backup:seeded-${s.day}`,
        trigger: 'scheduled',
        state: 'verified',
        taken_at: `${s.day}T01:00:00Z`,
        database_name: 'labflow',
        compression: 1,
        dump_path: s.path,
        verified_at: `${s.day}T01:05:00Z`,
        legal_hold: s.id === held.id,
      })),
    );
    // The size band compares with the last good backup: give the seeded ones the size a dump has now.
    const probe = join(settings.dir, 'probe.dump');
    const target = pgTarget(testEnv().databaseUrl);
    await runTool('pg_dump', ['-Fc', '-Z1', `--file=${probe}`, `--dbname=${target.url}`], { env: target.env });
    await db('backups')
      .whereIn(
        'id',
        seeded.map((s) => s.id),
      )
      .update({ dump_bytes: (await stat(probe)).size });
    // A failed attempt on the newest day and a running one: neither counts toward a slot.
    await db('backups').insert([
      {
        id: randomUUID(),
        workflow_id: 'backup:seeded-failed',
        trigger: 'scheduled',
        state: 'failed',
        taken_at: '2026-11-01T00:30:00Z',
        database_name: 'labflow',
        compression: 1,
      },
      {
        id: randomUUID(),
        workflow_id: 'backup:seeded-running',
        trigger: 'scheduled',
        state: 'running',
        taken_at: '2026-11-01T00:40:00Z',
        database_name: 'labflow',
        compression: 1,
      },
    ]);

    // A failing backup prunes nothing.
    await assert.rejects(
      backup({ settings: { ...settings, pgUser: `labflow_no_such_role_${uniqueSuffix()}` }, takenAt: '2026-11-01T01:00:00Z' }),
      (err: unknown) => err instanceof WorkflowFailedError && err.cause instanceof ApplicationFailure && err.cause.type === 'BackupFailed',
    );
    assert.equal((await db('backups').where({ state: 'expired' }).count({ n: '*' }).first())?.n, 0);

    const result = await backup({ takenAt: '2026-11-01T01:00:00Z' });
    const rows = await db('backups').select('id', 'state', 'tier', 'taken_at', 'legal_hold');
    const byDay = (state: string) =>
      rows
        .filter((r) => r.state === state && !r.legal_hold)
        .map((r) => `${new Date(r.taken_at).toISOString().slice(0, 10)}:${r.tier}`)
        .sort();
    // 7 daily (Nov 1, Oct 31…26), the newest of each of 4 ISO weeks (W44 Nov 1, W43 Oct 25, W42 Oct 18, W41 Oct 11),
    // the newest of each month (Nov 1, Oct 31, Sep 30, Aug 31, Jul 31); the longest tier wins.
    assert.deepEqual(byDay('verified'), [
      '2026-07-31:monthly',
      '2026-08-31:monthly',
      '2026-09-30:monthly',
      '2026-10-11:weekly',
      '2026-10-18:weekly',
      '2026-10-25:weekly',
      '2026-10-26:daily',
      '2026-10-27:daily',
      '2026-10-28:daily',
      '2026-10-29:daily',
      '2026-10-30:daily',
      '2026-10-31:monthly',
      '2026-11-01:monthly',
    ]);
    assert.equal(result.retention.kept, 13);
    assert.equal(result.retention.expired, seeded.length - 1 - 12);
    const heldRow = rows.find((r) => r.id === held.id)!;
    assert.equal(heldRow.state, 'verified', 'the legal hold is exempt');
    assert.ok(existsSync(held.path));
    const expired = seeded.filter((s) => rows.find((r) => r.id === s.id)!.state === 'expired');
    assert.equal(expired.length, seeded.length - 1 - 12);
    assert.ok(
      expired.every((s) => !existsSync(s.path)),
      'expired backups lose their files',
    );
    assert.equal(rows.filter((r) => r.state === 'failed').length, 2);
    assert.equal(rows.filter((r) => r.state === 'running').length, 1);
  });

  it("lists backups and starts an ad-hoc one over the API with the nightly schedule's settings", async () => {
    const db = testEnv().db;
    await db('backups').where({ state: 'running' }).update({ state: 'failed', failure: 'seeded' });
    const [nightly] = scheduleDefinitions({ taskQueue: p.taskQueue, timeZone: 'UTC', backup: settings, outboxDir: null }).filter(
      (d) => d.workflowType === 'backupWorkflow',
    );
    const owner = `test-${uniqueSuffix()}`;
    await reconcileSchedules(testEnv().client, [{ ...nightly, startPaused: true }], { taskQueue: p.taskQueue, owner });
    try {
      assert.equal((await p.api('POST', '/api/v1/backups', { key: users.author.apiKey })).status, 403);
      const started = await p.api('POST', '/api/v1/backups', { key: users.ops.apiKey });
      assert.equal(started.status, 202, JSON.stringify(started.body));
      assert.match(started.headers.get('location') ?? '', /^\/api\/v1\/workflows\/backup%3Aadhoc-/);
      const result = (await testEnv().client.workflow.getHandle(started.body.workflowId).result()) as BackupResult;
      const list = await p.api('GET', '/api/v1/backups?state=verified&limit=200', { key: users.qa.apiKey });
      assert.equal(list.status, 200);
      const mine = list.body.backups.find((b: { id: string }) => b.id === result.backupId);
      assert.equal(mine.trigger, 'manual');
      assert.equal(mine.requestedBy, users.ops.username);
      assert.equal(mine.encrypted, true);
      assert.equal(mine.storedSha256, await sha256File(mine.dump.path));
      assert.equal((await p.api('GET', '/api/v1/backups?state=bogus', { key: users.qa.apiKey })).status, 400);

      const hold = await p.api('POST', `/api/v1/backups/${result.backupId}/legal-hold`, {
        key: users.qa.apiKey,
        body: { hold: true, reason: 'litigation 2026-17' },
      });
      assert.equal(hold.status, 200);
      assert.equal(hold.body.legalHold, true);
      assert.equal(
        (await p.api('POST', `/api/v1/backups/${randomUUID()}/legal-hold`, { key: users.qa.apiKey, body: { hold: true, reason: 'x' } }))
          .status,
        404,
      );
    } finally {
      await testEnv().client.schedule.getHandle(nightly.scheduleId).delete();
    }
    assert.equal(
      (await p.api('POST', '/api/v1/backups', { key: users.ops.apiKey })).status,
      503,
      'without the schedule there are no settings',
    );
  });
});
