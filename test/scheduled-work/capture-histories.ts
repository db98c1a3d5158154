/**
 * Drives real runs of each scheduled-work workflow (backup, restore drill, reminders, digest, clean-up, health
 * canary, audit-trail check) on the test server and saves their histories as replay fixtures in
 * test/fixtures/histories/scheduled-work/. Run with `npx mocha test/scheduled-work/capture-histories.ts` after a
 * deliberate change to what a run records; commit the new files.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import { mkdtemp, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type {
  BackupInput,
  BackupResult,
  BackupSettings,
  CleanupCounts,
  CleanupInput,
  DigestInput,
  OverdueRemindersInput,
  RestoreDrillResult,
} from '../../common/scheduled-work';
import { openTask } from '../../db/tasks';
import { fetchFixture, saveFixture } from '../../workers/replay';
import { historiesDir } from '../helpers/replay-suite';
import { startPlatform, type Platform } from '../helpers/platform';
import { makeUsers, type TestUser } from '../helpers/users';
import { testEnv } from '../setup/env';
import { testBackupSettings, uniqueSuffix } from './support';

const dir = historiesDir('scheduled-work');

describe('capturing scheduled-work replay fixtures from real runs', () => {
  let p: Platform;
  let users: Record<'ops' | 'alice' | 'dc' | 'admin', TestUser>;
  let settings: BackupSettings;

  before(async () => {
    mkdirSync(dir, { recursive: true });
    p = await startPlatform();
    users = await makeUsers({ ops: ['it_operator'], alice: ['reviewer'], dc: ['document_control'], admin: ['admin'] });
    settings = await testBackupSettings();
    const keyFile = join(settings.dir, '..', 'backup.key');
    await writeFile(keyFile, randomBytes(32).toString('hex'));
    settings = { ...settings, encryptionKeyFile: keyFile };
  });
  after(() => p.stop());

  const exec = async <T>(prefix: string, workflowType: string, args: unknown[]) => {
    const workflowId = `${prefix}:capture-${uniqueSuffix()}`;
    const result = (await testEnv().client.workflow.execute(workflowType, { workflowId, taskQueue: p.taskQueue, args })) as T;
    return { workflowId, result };
  };
  const save = async (name: string, workflowId: string) =>
    saveFixture(join(dir, `${name}.json`), await fetchFixture(testEnv().client, workflowId));
  const userId = async (u: TestUser) => (await testEnv().db('users').where({ username: u.username }).first('id')).id as string;

  it('captures a verified backup and a weekly restore drill of it', async () => {
    const backup = await exec<BackupResult>('backup', 'backupWorkflow', [{ settings, trigger: 'manual' } satisfies BackupInput]);
    assert.equal(backup.result.state, 'verified');
    await save('backup-verified', backup.workflowId);

    const drill = await exec<RestoreDrillResult>('restore-drill', 'restoreDrillWorkflow', [{ settings }]);
    assert.equal(drill.result.ok, true, drill.result.failure ?? '');
    assert.equal(drill.result.backupId, backup.result.backupId);
    await save('restore-drill', drill.workflowId);
  });

  it('captures a failed backup (pg_dump refused), which tells IT operators', async () => {
    const workflowId = `backup:capture-${uniqueSuffix()}`;
    const failed = await testEnv()
      .client.workflow.execute('backupWorkflow', {
        workflowId,
        taskQueue: p.taskQueue,
        args: [{ settings: { ...settings, pgUser: `labflow_no_such_role_${uniqueSuffix()}` }, trigger: 'manual' } satisfies BackupInput],
      })
      .catch((err) => err);
    assert.ok(failed instanceof Error, 'the backup failed');
    assert.equal((await testEnv().client.workflow.getHandle(workflowId).describe()).status.name, 'FAILED');
    await save('backup-failed', workflowId);
  });

  it('captures the health canary', async () => {
    const { workflowId } = await exec('health-canary', 'healthCanaryWorkflow', []);
    await save('health-canary', workflowId);
  });

  it('captures overdue reminders that remind and escalate, and send emails', async () => {
    const db = testEnv().db;
    const alice = await userId(users.alice);
    const tag = uniqueSuffix();
    await openTask(db, {
      workflowId: `wf-${tag}`,
      entityType: 'document',
      entityId: `DOC-${tag}`,
      taskKey: `t1-${tag}`,
      kind: 'review',
      title: `Review ${tag}`,
      assignee: { kind: 'user', userId: alice, username: users.alice.username },
      dueAt: '2030-01-01T08:00:00Z',
    });
    const input: OverdueRemindersInput = {
      every: '4h',
      asOf: '2030-01-02T09:00:00Z',
      escalation: { document: { after: '24h', to: 'document_control' } },
    };
    const { workflowId, result } = await exec<{ reminded: number; escalated: number }>('overdue-reminders', 'overdueRemindersWorkflow', [
      input,
    ]);
    assert.ok(result.reminded >= 1 && result.escalated >= 1, JSON.stringify(result));
    await save('overdue-reminders', workflowId);
  });

  it('captures a daily digest that sends emails', async () => {
    const db = testEnv().db;
    const alice = await userId(users.alice);
    const tag = uniqueSuffix();
    await openTask(db, {
      taskKey: `digest-${tag}`,
      workflowId: `wf-${tag}`,
      entityType: 'document',
      entityId: `DOC-${tag}`,
      kind: 'review',
      title: `Digest ${tag}`,
      assignee: { kind: 'user', userId: alice, username: users.alice.username },
      dueAt: '2031-03-02T12:00:00Z',
    });
    const input: DigestInput = { hour: 9, labTimeZone: 'UTC', dueSoon: '24h', asOf: '2031-03-02T09:00:00Z' };
    const { workflowId, result } = await exec<{ sent: number }>('daily-digest', 'dailyDigestWorkflow', [input]);
    assert.ok(result.sent >= 1, JSON.stringify(result));
    await save('daily-digest', workflowId);
  });

  it('captures a clean-up that removes old keys, notifications and outbox files', async () => {
    const db = testEnv().db;
    const alice = await userId(users.alice);
    await db('api_keys').insert({ user_id: alice, prefix: `old-${uniqueSuffix()}`, key_hash: 'x', revoked_at: '2031-01-01T00:00:00Z' });
    await db('notifications').insert({
      idempotency_key: `old-${uniqueSuffix()}`,
      user_id: alice,
      kind: 'x',
      title: 'x',
      body: 'x',
      read_at: '2031-01-01T00:00:00Z',
    });
    const outbox = await mkdtemp(join(tmpdir(), 'labflow-outbox-'));
    await writeFile(join(outbox, 'old.eml'), 'x');
    await utimes(join(outbox, 'old.eml'), new Date('2031-01-01'), new Date('2031-01-01'));
    const input: CleanupInput = {
      keepReadNotifications: '90d',
      keepSentEmails: '30d',
      keepRevokedKeys: '90d',
      outboxDir: outbox,
      keepOutboxFiles: '30d',
      asOf: '2031-06-01T00:00:00Z',
    };
    const { workflowId, result } = await exec<CleanupCounts>('cleanup', 'cleanupWorkflow', [input]);
    assert.ok(result.revokedKeys >= 1 && result.outboxFiles === 1, JSON.stringify(result));
    await save('cleanup', workflowId);
  });

  type AuditCheck = { ok: boolean; events: number; firstBrokenSeq: number | null };

  it('captures an audit-trail check that finds the chain intact', async () => {
    const { workflowId, result } = await exec<AuditCheck>('audit-verify', 'auditVerifyWorkflow', []);
    assert.equal(result.ok, true, JSON.stringify(result));
    await save('audit-verify-intact', workflowId);
  });

  it('captures an audit-trail check that finds a broken link and alerts the admins', async () => {
    const db = testEnv().db;
    // Only the database owner can get past the append-only trigger; the change is undone below.
    const { seq, details } = await db('audit_events').orderBy('seq', 'desc').first('seq', 'details');
    const setDetails = (value: unknown) =>
      db.transaction(async (trx) => {
        await trx.raw('set local session_replication_role = replica');
        await trx('audit_events')
          .where({ seq })
          .update({ details: JSON.stringify(value) });
      });
    await setDetails({ ...details, tampered: true });
    try {
      const { workflowId, result } = await exec<AuditCheck>('audit-verify', 'auditVerifyWorkflow', []);
      assert.equal(result.firstBrokenSeq, seq, JSON.stringify(result));
      await save('audit-verify-broken', workflowId);
    } finally {
      await setDetails(details);
    }
  });
});
