import assert from 'node:assert/strict';
import { mkdtemp, readdir, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { CleanupCounts, CleanupInput, DigestInput, OverdueRemindersInput } from '../../common/scheduled-work';
import { writeNotice } from '../../activities/notice-writer';
import { openTask } from '../../db/tasks';
import { startPlatform, type Platform } from '../helpers/platform';
import { createScratchDatabase, type ScratchDatabase } from '../helpers/scratch-database';
import { makeUsers, type TestUser } from '../helpers/users';
import { waitFor } from '../helpers/wait';
import { testEnv } from '../setup/env';
import { uniqueSuffix } from './support';

// On a database of its own: the reminder and digest jobs work through every open task and every user they find.
describe('reminders, digest, clean-up and the health canary', () => {
  let scratch: ScratchDatabase;
  let p: Platform;
  let users: Record<'alice' | 'bob' | 'dc' | 'tokyo', TestUser>;
  const ids = (u: TestUser) => scratch.db('users').where({ username: u.username }).first('id');
  const exec = <T>(workflowType: string, args: unknown[]) =>
    testEnv().client.workflow.execute(workflowType, {
      workflowId: `${workflowType}:test-${uniqueSuffix()}`,
      taskQueue: p.taskQueue,
      args,
    }) as Promise<T>;

  before(async () => {
    scratch = await createScratchDatabase('periodic');
    p = await startPlatform({ db: scratch.db });
    users = await makeUsers({ alice: ['reviewer'], bob: ['approver'], dc: ['document_control'], tokyo: ['author'] }, scratch.db);
  });
  after(async () => {
    await p?.stop();
    await scratch?.drop();
  });

  it('reminds each overdue task once per period, escalates once per task, and leaves tasks not yet due alone', async () => {
    const db = scratch.db;
    const alice = (await ids(users.alice)).id;
    const tag = uniqueSuffix();
    const base = { workflowId: `wf-${tag}`, entityType: 'document', entityId: `DOC-${tag}` };
    await openTask(db, {
      ...base,
      taskKey: `t1-${tag}`,
      kind: 'review',
      title: `Review ${tag}`,
      assignee: { kind: 'user', userId: alice, username: users.alice.username },
      dueAt: '2030-01-01T08:00:00Z',
    });
    await openTask(db, {
      ...base,
      taskKey: `t2-${tag}`,
      kind: 'review',
      title: `Later ${tag}`,
      assignee: { kind: 'user', userId: alice, username: users.alice.username },
      dueAt: '2030-01-03T08:00:00Z',
    });
    const [t1, t2] = await Promise.all([
      db('tasks')
        .where({ task_key: `t1-${tag}` })
        .first(),
      db('tasks')
        .where({ task_key: `t2-${tag}` })
        .first(),
    ]);
    const remindersOf = (taskId: string) =>
      db('notifications').where('idempotency_key', 'like', `task-reminder:${taskId}:%`).pluck('idempotency_key');
    const escalationsOf = (taskId: string) => db('notifications').where({ idempotency_key: `task-escalation:${taskId}` });
    const input = (asOf: string): OverdueRemindersInput => ({
      every: '4h',
      asOf,
      escalation: { document: { after: '24h', to: 'document_control' } },
    });

    await exec('overdueRemindersWorkflow', [input('2030-01-01T09:00:00Z')]);
    assert.equal((await remindersOf(t1.id)).length, 1);
    // The same period again (a retry, a manual trigger, a backfill): nothing new.
    await exec('overdueRemindersWorkflow', [input('2030-01-01T10:30:00Z')]);
    assert.equal((await remindersOf(t1.id)).length, 1);
    assert.equal((await escalationsOf(t1.id)).length, 0, 'not yet overdue by 24h');
    // The next period: a second reminder.
    await exec('overdueRemindersWorkflow', [input('2030-01-01T13:00:00Z')]);
    assert.equal((await remindersOf(t1.id)).length, 2);
    // Overdue by more than a day: escalated to document control, once.
    await exec('overdueRemindersWorkflow', [input('2030-01-02T09:00:00Z')]);
    await exec('overdueRemindersWorkflow', [input('2030-01-02T12:30:00Z')]);
    const escalations = await escalationsOf(t1.id);
    const dc = (await ids(users.dc)).id;
    assert.ok(escalations.some((n) => n.user_id === dc));
    assert.equal(escalations.filter((n) => n.user_id === dc).length, 1);
    assert.equal((await remindersOf(t1.id)).length, 4);
    assert.equal((await remindersOf(t2.id)).length, 0, 'a task not yet due gets no reminder');
    // Other systems hear once that the task is overdue (task.overdue), however many reminders follow; IDs only.
    const overdueEvents = await db('domain_events').where({ type: 'task.overdue' }).whereRaw("data ->> 'taskKey' in (?, ?)", [`t1-${tag}`, `t2-${tag}`]);
    assert.deepEqual(
      overdueEvents.map((e) => [e.data.taskKey, e.data.assigneeUserId, e.data.dueAt, e.entity_id]),
      [[`t1-${tag}`, alice, '2030-01-01T08:00:00.000Z', `DOC-${tag}`]],
    );
    assert.equal(
      await db('task_reminders')
        .where({ task_id: t1.id, kind: 'escalation' })
        .count({ n: '*' })
        .first()
        .then((r) => r?.n),
      1,
    );
    // Emails went through the outbox to the real SMTP sink, one per reminder.
    await waitFor(
      () =>
        testEnv().mails.filter(
          (m) => m.to.includes(`${users.alice.username}@lab.test`) && (m.subject ?? '').includes(`Overdue: Review ${tag}`),
        ).length === 4,
      'four reminder emails',
    );
  });

  it("sends each user's digest once a day at 09:00 in their own zone, else the lab's", async () => {
    const db = scratch.db;
    const tag = uniqueSuffix();
    const [bob, tokyo] = [(await ids(users.bob)).id, (await ids(users.tokyo)).id];
    const pref = await p.api('PUT', '/api/v1/me/preferences', { key: users.tokyo.apiKey, body: { timeZone: 'Asia/Tokyo' } });
    assert.equal(pref.status, 200);
    assert.equal(
      (await p.api('PUT', '/api/v1/me/preferences', { key: users.tokyo.apiKey, body: { timeZone: 'Mars/Olympus' } })).status,
      400,
    );
    const task = (key: string, userId: string, username: string, dueAt: string) =>
      openTask(db, {
        taskKey: `${key}-${tag}`,
        workflowId: `wf-${tag}`,
        entityType: 'document',
        entityId: `DOC-${tag}`,
        kind: 'review',
        title: `${key} ${tag}`,
        assignee: { kind: 'user', userId, username },
        dueAt,
      });
    await task('overdue', bob, users.bob.username, '2031-03-01T00:00:00Z');
    await task('soon', bob, users.bob.username, '2031-03-02T12:00:00Z');
    await task('later', bob, users.bob.username, '2031-04-01T00:00:00Z');
    await task('tokyo', tokyo, users.tokyo.username, '2031-03-05T00:00:00Z');
    const digest = (asOf: string): DigestInput => ({ hour: 9, labTimeZone: 'UTC', dueSoon: '24h', asOf });
    const digestsOf = (userId: string) => db('notifications').where({ user_id: userId, kind: 'digest' }).orderBy('created_at');

    // 00:30Z is 09:30 in Tokyo and 00:30 in the lab's zone (UTC).
    await exec('dailyDigestWorkflow', [digest('2031-03-02T00:30:00Z')]);
    assert.equal((await digestsOf(tokyo)).length, 1);
    assert.equal((await digestsOf(bob)).length, 0);
    await exec('dailyDigestWorkflow', [digest('2031-03-02T09:00:00Z')]);
    await exec('dailyDigestWorkflow', [digest('2031-03-02T10:00:00Z')]);
    const bobs = await digestsOf(bob);
    assert.equal(bobs.length, 1, 'once a day');
    assert.equal(bobs[0].idempotency_key, 'digest:2031-03-02');
    assert.match(bobs[0].body, /Open tasks: 3\. Due soon: 1\. Overdue: 1\./);
    assert.match(bobs[0].body, new RegExp(`Overdue:\\n- overdue ${tag}`));
    assert.equal((await digestsOf(tokyo)).length, 1);
    await waitFor(
      () => testEnv().mails.find((m) => m.to.includes(`${users.bob.username}@lab.test`) && /digest for 2031-03-02/.test(m.subject ?? '')),
      'the digest email',
    );
    // The next local day brings the next digest.
    await exec('dailyDigestWorkflow', [digest('2031-03-03T09:05:00Z')]);
    assert.equal((await digestsOf(bob)).length, 2);
  });

  it('puts a digest-priority notice into the next digest of each person it is for, and delivers that digest once', async () => {
    const db = scratch.db;
    const tag = uniqueSuffix();
    const { reader } = await makeUsers({ reader: ['it_operator'] }, db);
    const readerId = (await ids(reader)).id;
    const title = `Review of SOP-${tag}`;
    const written = await db.transaction((trx) =>
      writeNotice(
        trx,
        {
          idempotencyKey: `digest-notice:${tag}`,
          kind: 'task.escalated',
          priority: 'digest',
          subjectType: 'document',
          subjectId: `SOP-${tag}`,
          facts: { taskId: tag, title, entityType: 'document', entityId: `SOP-${tag}`, dueAt: '2031-06-30T00:00:00.000Z' },
          link: `http://labflow.test/tasks/${tag}`,
          recipients: [{ id: readerId, username: reader.username, email: `${reader.username}@lab.test`, printed_name: reader.actor.printedName }],
        },
        'lab.test',
      ),
    );
    assert.deepEqual({ needsRun: written.needsRun, outbox: written.outboxIds.length }, { needsRun: false, outbox: 0 }, 'it waits for the digest');
    const waiting = () => db('notice_deliveries').where({ notice_id: written.noticeId, user_id: readerId, channel: 'digest' }).first('state');
    assert.equal((await waiting()).state, 'pending');

    const digest = (asOf: string): DigestInput => ({ hour: 9, labTimeZone: 'UTC', dueSoon: '24h', asOf });
    await exec('dailyDigestWorkflow', [digest('2031-07-01T09:30:00Z')]);
    const digests = await db('notifications').where({ user_id: readerId, kind: 'digest' });
    assert.equal(digests.length, 1, 'a person with no open task gets a digest for the notice alone');
    assert.match(digests[0].body, /Open tasks: 0\./);
    assert.ok(digests[0].body.includes(`Notices:\n- Escalated: ${title} http://labflow.test/tasks/${tag}`), digests[0].body);
    assert.equal((await waiting()).state, 'sent');
    await waitFor(
      () => testEnv().mails.find((m) => m.to.includes(`${reader.username}@lab.test`) && /digest for 2031-07-01/.test(m.subject ?? '')),
      'the digest email',
    );
    // Carried once: the next day has nothing for this person.
    await exec('dailyDigestWorkflow', [digest('2031-07-02T09:30:00Z')]);
    assert.equal((await db('notifications').where({ user_id: readerId, kind: 'digest' })).length, 1);
  });

  it('cleans up revoked keys, old read notifications, sent outbox rows and .eml files, recording the counts', async () => {
    const db = scratch.db;
    const alice = (await ids(users.alice)).id;
    const asOf = '2031-06-01T00:00:00Z';
    await db('api_keys').insert({ user_id: alice, prefix: `old-${uniqueSuffix()}`, key_hash: 'x', revoked_at: '2031-01-01T00:00:00Z' });
    await db('api_keys').insert({ user_id: alice, prefix: `new-${uniqueSuffix()}`, key_hash: 'x', revoked_at: '2031-05-30T00:00:00Z' });
    await db('notifications').insert({
      idempotency_key: `old-${uniqueSuffix()}`,
      user_id: alice,
      kind: 'x',
      title: 'x',
      body: 'x',
      read_at: '2031-01-01T00:00:00Z',
    });
    await db('notifications').insert({
      idempotency_key: `unread-${uniqueSuffix()}`,
      user_id: alice,
      kind: 'x',
      title: 'x',
      body: 'x',
      created_at: '2031-01-01T00:00:00Z',
    });
    const outbox = await mkdtemp(join(tmpdir(), 'labflow-outbox-'));
    await writeFile(join(outbox, 'old.eml'), 'x');
    await writeFile(join(outbox, 'new.eml'), 'x');
    await utimes(join(outbox, 'old.eml'), new Date('2031-01-01'), new Date('2031-01-01'));
    await utimes(join(outbox, 'new.eml'), new Date('2031-05-31'), new Date('2031-05-31'));
    const input: CleanupInput = {
      keepReadNotifications: '90d',
      keepSentEmails: '30d',
      keepRevokedKeys: '90d',
      outboxDir: outbox,
      keepOutboxFiles: '30d',
      asOf,
    };
    const counts = await exec<CleanupCounts>('cleanupWorkflow', [input]);
    assert.ok(counts.revokedKeys >= 1 && counts.readNotifications >= 1, JSON.stringify(counts));
    assert.equal(counts.outboxFiles, 1);
    assert.deepEqual(await readdir(outbox), ['new.eml']);
    assert.equal((await db('api_keys').where('prefix', 'like', 'new-%').where({ user_id: alice })).length, 1);
    assert.equal(
      (await db('notifications').where('idempotency_key', 'like', 'unread-%').where({ user_id: alice })).length,
      1,
      'unread notifications stay',
    );
    const audit = await db('audit_events').where({ action: 'maintenance.cleanup' }).orderBy('seq', 'desc').first();
    assert.deepEqual(audit.details, counts);
  });

  it('runs the health canary through Temporal, a worker and Postgres, and /readyz reports it', async () => {
    const before = await p.api('GET', '/readyz');
    assert.ok(['never', 'ok', 'stale'].includes(before.body.canary.status));
    const workflowId = `health-canary:test-${uniqueSuffix()}`;
    await testEnv().client.workflow.execute('healthCanaryWorkflow', { workflowId, taskQueue: p.taskQueue });
    const ready = await p.api('GET', '/readyz');
    assert.equal(ready.status, 200);
    assert.equal(ready.body.canary.status, 'ok');
    assert.equal(ready.body.canary.workflowId, workflowId);
    assert.ok(ready.body.canary.ageSeconds < 60);
    // A canary that stopped arriving shows as stale (readiness itself still answers: the API can serve without a worker).
    await scratch.db('health_canary').update({ completed_at: scratch.db.raw("now() - interval '1 hour'") });
    const stale = await p.api('GET', '/readyz');
    assert.equal(stale.status, 200);
    assert.equal(stale.body.canary.status, 'stale');
  });
});
