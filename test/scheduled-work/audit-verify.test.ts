import assert from 'node:assert/strict';
import type { Worker } from '@temporalio/worker';
import { createActivities } from '../../activities';
import { createMailer } from '../../activities/mailer';
import { createUser } from '../../db/identity';
import type { Db } from '../../db/knex';
import { createWorker } from '../../workers/create-worker';
import { createScratchDatabase, type ScratchDatabase } from '../helpers/scratch-database';
import { waitFor } from '../helpers/wait';
import { testEnv } from '../setup/env';
import { uniqueSuffix } from './support';

type Verdict = { ok: boolean; events: number; firstBrokenSeq: number | null };

// On a throwaway database of its own, with a worker of its own: the run's shared trail is never tampered with.
describe('the nightly audit trail verification', () => {
  let db: Db;
  let scratch: ScratchDatabase;
  let worker: Worker;
  let running: Promise<void>;
  let mailer: ReturnType<typeof createMailer>;
  const taskQueue = `audit-verify-${uniqueSuffix()}`;
  const admin = `auditor-${uniqueSuffix()}`;
  const writer = `writer-${uniqueSuffix()}`;

  before(async () => {
    scratch = await createScratchDatabase('audit');
    db = scratch.db;
    await createUser(db, { username: admin, printedName: 'Audrey Auditor', email: `${admin}@lab.test`, roles: ['admin'] });
    await createUser(db, { username: writer, printedName: 'Will Writer', email: `${writer}@lab.test`, roles: ['author'] });
    mailer = createMailer({
      smtpUrl: `smtp://127.0.0.1:${testEnv().smtpPort}`,
      from: 'labflow <labflow@lab.test>',
      outboxDir: '/nonexistent',
    });
    worker = await createWorker({
      connection: testEnv().nativeConnection,
      namespace: 'default',
      taskQueue,
      activities: createActivities({ db, mailer, publicUrl: 'http://labflow.test', mailDomain: 'lab.test' }),
      workflowBundle: testEnv().workflowBundle,
      dataConverter: testEnv().dataConverter,
    });
    running = worker.run();
  });
  after(async () => {
    if (worker?.getState() === 'RUNNING') worker.shutdown();
    await running;
    mailer?.close();
    await scratch?.drop();
  });

  const verify = () =>
    testEnv().client.workflow.execute('auditVerifyWorkflow', {
      workflowId: `audit-verify:test-${uniqueSuffix()}`,
      taskQueue,
      args: [],
    }) as Promise<Verdict>;

  it('refuses to TRUNCATE the audit trail', async () => {
    await assert.rejects(db.raw('truncate audit_events'), /audit_events is append-only: TRUNCATE refused/);
    assert.ok(Number((await db('audit_events').count({ n: '*' }).first())?.n) > 0, 'the trail is still there');
  });

  it('finds an untouched chain whole and alerts nobody', async () => {
    const verdict = await verify();
    assert.deepEqual(verdict, { ok: true, events: Number((await db('audit_events').count({ n: '*' }).first())?.n), firstBrokenSeq: null });
    assert.equal(await db('notifications').where({ kind: 'audit.chain_broken' }).first(), undefined);
  });

  it('names the first broken event of an altered chain and emails every admin, and only admins', async () => {
    const mailsBefore = testEnv().mails.length;
    await db.transaction(async (trx) => {
      await trx.raw('alter table audit_events disable trigger audit_events_append_only');
      await trx.raw(`update audit_events set details = '{"altered": true}' where seq = 2`);
      await trx.raw('alter table audit_events enable trigger audit_events_append_only');
    });

    const verdict = await verify();
    assert.equal(verdict.ok, false);
    assert.equal(verdict.firstBrokenSeq, 2);

    const alerts = await waitFor(() => {
      const sent = testEnv()
        .mails.slice(mailsBefore)
        .filter((m) => m.subject?.includes('Audit trail verification failed'));
      return sent.length ? sent : null;
    }, 'the alert email');
    assert.deepEqual(
      alerts.flatMap((m) => m.to),
      [`${admin}@lab.test`],
    );
    assert.match(alerts[0].raw, /breaks at event 2/);
    const notices = await db('notifications').where({ kind: 'audit.chain_broken' }).select('user_id');
    assert.equal(notices.length, 1, 'one in-app notice, to the one admin');
  });
});
