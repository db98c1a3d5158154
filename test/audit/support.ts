import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Worker } from '@temporalio/worker';
import { createActivities } from '../../activities';
import { createMailer } from '../../activities/mailer';
import { createApp } from '../../api/app';
import { createAuthenticator } from '../../api/auth';
import type { BackupSettings } from '../../common/scheduled-work';
import { appendAudit } from '../../db/audit';
import { auditChainSettings, type AuditChainSettings } from '../../db/audit-chain';
import { createUser } from '../../db/identity';
import { createDb, dropDatabase, ensureDatabase, type Db } from '../../db/knex';
import { migrateLatest } from '../../db/migrate';
import { createLogger } from '../../platform/logger';
import { createWorker } from '../../workers/create-worker';
import { serve } from '../api/support';
import { testApiConfig } from '../helpers/platform';
import { testEnv } from '../setup/env';
import { testBackupSettings } from '../scheduled-work/support';

export type NightlyVerdict = { ok: boolean; events: number; firstBrokenSeq: number | null };

/**
 * A trail of its own: a throwaway database with a few events, a chain key and checkpoint directories next to its
 * own backup directories, a worker and an API over it. Tampering with it never touches the run's shared trail.
 */
export interface Trail {
  db: Db;
  chain: AuditChainSettings;
  backup: BackupSettings;
  users: { admin: string; qa: string; author: string; adminKey: string };
  taskQueue: string;
  nightly(): Promise<NightlyVerdict>;
  api: Awaited<ReturnType<typeof serve>>;
  close(): Promise<void>;
}

const tag = () => randomBytes(3).toString('hex');

export async function openTrail(events = 8): Promise<Trail> {
  const url = new URL(testEnv().databaseUrl);
  url.pathname = `/labflow_chain_${process.pid}_${tag()}`;
  const databaseUrl = url.toString();
  await ensureDatabase(databaseUrl);
  const db = createDb(databaseUrl, 4);
  await migrateLatest(db);
  const backup = await testBackupSettings();
  const chain = auditChainSettings(randomBytes(32), [join(backup.dir, 'audit-checkpoints'), join(backup.offsiteDir!, 'audit-checkpoints')]);
  const t = tag();
  const users = { admin: `chain-admin-${t}`, qa: `chain-qa-${t}`, author: `chain-author-${t}`, adminKey: '' };
  users.adminKey = (
    await createUser(db, { username: users.admin, printedName: 'Ada Admin', email: `${users.admin}@lab.test`, roles: ['admin'] })
  ).apiKey;
  await createUser(db, { username: users.qa, printedName: 'Quinn QA', email: `${users.qa}@lab.test`, roles: ['qa_manager'] });
  await createUser(db, { username: users.author, printedName: 'Arlo Author', email: `${users.author}@lab.test`, roles: ['author'] });
  await recordEvents(db, events);

  const mailer = createMailer({
    smtpUrl: `smtp://127.0.0.1:${testEnv().smtpPort}`,
    from: 'labflow <labflow@lab.test>',
    outboxDir: '/nonexistent',
  });
  const taskQueue = `audit-chain-${t}`;
  const worker: Worker = await createWorker({
    connection: testEnv().nativeConnection,
    namespace: 'default',
    taskQueue,
    activities: createActivities({ db, mailer, publicUrl: 'http://labflow.test', mailDomain: 'lab.test', auditChain: chain }),
    workflowBundle: testEnv().workflowBundle,
    dataConverter: testEnv().dataConverter,
  });
  const running = worker.run();
  const config = testApiConfig(taskQueue);
  const api = await serve(
    createApp({
      db,
      temporal: testEnv().client,
      config,
      log: createLogger({ LOG_LEVEL: 'silent', LOG_PRETTY: false }, 'test'),
      authenticate: createAuthenticator(db, config.apiKeyCacheTtlMs),
      auditChain: chain,
    }),
  );
  return {
    db,
    chain,
    backup,
    users,
    taskQueue,
    api,
    nightly: () =>
      testEnv().client.workflow.execute('auditVerifyWorkflow', {
        workflowId: `audit-verify:test-${tag()}`,
        taskQueue,
        args: [],
      }) as Promise<NightlyVerdict>,
    async close() {
      await api.close();
      if (worker.getState() === 'RUNNING') worker.shutdown();
      await running;
      mailer.close();
      await db.destroy();
      await dropDatabase(databaseUrl);
      await rm(join(backup.dir, '..'), { recursive: true, force: true });
    },
  };
}

export async function recordEvents(db: Db, n: number): Promise<void> {
  for (let i = 0; i < n; i += 1) {
    await appendAudit(db, { actor: 'system:test', action: 'test.recorded', entityType: 'test', entityId: `E-${i}`, details: { i } });
  }
}

export const eventCount = async (db: Db) => Number((await db('audit_events').count({ n: '*' }).first())?.n);
export const sealCount = async (db: Db) => Number((await db('audit_seals').count({ n: '*' }).first())?.n);

/**
 * What a superuser can do: switch the append-only trigger off, change one event, and recompute the database hash of
 * it and of every event after it, so that the unkeyed chain is whole again.
 */
export async function rewriteAndRehash(db: Db, seq: number, details: Record<string, unknown>): Promise<void> {
  await db.transaction(async (trx) => {
    await trx.raw('alter table audit_events disable trigger audit_events_append_only');
    await trx.raw('update audit_events set details = ?::jsonb where seq = ?', [JSON.stringify(details), seq]);
    await trx.raw(`
      do $$
      declare
        r record;
        prev text;
      begin
        select hash into prev from audit_events where seq = ${Number(seq)} - 1;
        for r in select seq from audit_events where seq >= ${Number(seq)} order by seq loop
          update audit_events e set prev_hash = prev, hash = audit_event_digest(prev, e) where e.seq = r.seq
            returning e.hash into prev;
        end loop;
      end $$`);
    await trx.raw('alter table audit_events enable trigger audit_events_append_only');
  });
}

/** As a superuser: removes the seals from `fromSeq` on, the way one would hide a rewrite from the keyed links. */
export async function dropSeals(db: Db, fromSeq: number): Promise<void> {
  await db.transaction(async (trx) => {
    await trx.raw('alter table audit_seals disable trigger audit_seals_append_only');
    await trx.raw('delete from audit_seals where seq >= ?', [fromSeq]);
    await trx.raw('alter table audit_seals enable trigger audit_seals_append_only');
  });
}

/** As a superuser: deletes the newest events (and their seals) from `fromSeq` on. */
export async function truncateFrom(db: Db, fromSeq: number): Promise<void> {
  await dropSeals(db, fromSeq);
  await db.transaction(async (trx) => {
    await trx.raw('alter table audit_events disable trigger audit_events_append_only');
    await trx.raw('delete from audit_events where seq >= ?', [fromSeq]);
    await trx.raw('alter table audit_events enable trigger audit_events_append_only');
  });
}

export async function tempDir(): Promise<string> {
  return mkdtemp(join(tmpdir(), 'labflow-chain-'));
}
