import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { signaturesWithVoids, VOID_COLUMNS } from '../../db/signatures';
import { testEnv } from '../setup/env';
import { approve, createDraft, getVersion, holdTask, submit, waitForHeldDecision, waitForState } from '../helpers/documents';
import { startPlatform, type Platform } from '../helpers/platform';
import { makeUsers, type TestUser } from '../helpers/users';
import { waitFor } from '../helpers/wait';
import { killHard, spawnWorker } from '../helpers/worker-process';

describe('document approval survives a worker killed with SIGKILL mid-review', () => {
  let p: Platform;
  let worker: ChildProcess | undefined;
  let u: Record<'author' | 'rita' | 'rick' | 'april', TestUser>;

  before(async () => {
    p = await startPlatform({ withWorker: false });
    u = await makeUsers({ author: ['author'], rita: ['reviewer'], rick: ['reviewer'], april: ['approver'] });
  });
  after(async () => {
    if (worker && worker.exitCode === null) await killHard(worker);
    await p.stop();
  });

  it('resumes on a new worker and reaches the same end with no duplicated email or audit record', async function () {
    // Three worker processes start one after another and every queued email is awaited: 91–97 s on Node 20 and 24
    // with the load average at 17–21, too close to the suite's 120 s default for a machine that busy.
    this.timeout(300_000);
    worker = await spawnWorker(p.taskQueue);
    // A specification's routing template: technical review, then QA approval.
    const { number, contentHash } = await createDraft(p, u.author, undefined, 'Pipette tip specification', 'specification');
    const { workflowId } = await submit(p, u.author, number, 1, {
      routing: [
        { name: 'Technical review', assignees: [{ user: u.rita.username }, { user: u.rick.username }] },
        { name: 'QA approval', assignees: [{ user: u.april.username }] },
      ],
    });
    await waitFor(async () => (await getVersion(p, u.author.apiKey, number, 1)).process?.stages[0].status === 'active', 'stage 1 active');
    assert.equal((await approve(p, u.rita, number, 1, contentHash)).status, 200);

    // Rick signs while the worker dies. His open task row is held locked, so the activity recording his decision
    // blocks inside its transaction: the run has accepted the decision and its record is in flight, not written.
    const { db } = testEnv();
    const rickTask = `${workflowId}:r1:s0:user:${u.rick.username}`;
    const lock = await holdTask(rickTask);
    try {
      const rickSigns = approve(p, u.rick, number, 1, contentHash);
      await waitForHeldDecision(workflowId, "Rick's decision");
      await killHard(worker);
      // The dead worker's transaction never commits: releasing the lock lets it fail, and the next worker retries.
      await lock.rollback();
      worker = await spawnWorker(p.taskQueue);
      assert.equal((await rickSigns).status, 200);
    } finally {
      if (!lock.isCompleted()) await lock.rollback();
    }
    assert.equal((await db('tasks').where({ task_key: rickTask }).first('state')).state, 'done');

    await waitFor(async () => (await getVersion(p, u.author.apiKey, number, 1)).process?.stages[1].status === 'active', 'stage 2 active');
    await killHard(worker);
    worker = await spawnWorker(p.taskQueue);
    assert.equal((await approve(p, u.april, number, 1, contentHash)).status, 200);
    await waitForState(p, u.author.apiKey, number, 1, 'effective');

    const { mails } = testEnv();
    const signatures = await signaturesWithVoids(db).where({ 's.workflow_id': workflowId }).select('s.username', db.raw(VOID_COLUMNS[0]));
    assert.equal(signatures.length, 3);
    assert.ok(signatures.every((s) => !s.void));

    const actions: string[] = await db('audit_events').where({ entity_type: 'document', entity_id: number }).orderBy('seq').pluck('action');
    const count = (action: string) => actions.filter((a) => a === action).length;
    assert.equal(count('document.stage_opened'), 2);
    assert.equal(count('document.decision.approve'), 3);
    assert.equal(count('document.stage_closed'), 2);
    assert.equal(count('document.approved'), 1);
    assert.equal(count('document.effective'), 1);

    const outbox = await db('email_outbox').where('idempotency_key', 'like', `${workflowId}:%`).select('message_id', 'state');
    assert.ok(outbox.length >= 4, `emails were queued (${outbox.length})`);
    await waitFor(
      async () =>
        (
          await db('email_outbox')
            .whereIn(
              'message_id',
              outbox.map((o) => o.message_id),
            )
            .where('state', 'sent')
            .count('* as n')
            .first()
        )?.n === outbox.length,
      'all sent',
      90_000,
    );
    // Every queued email arrived. SMTP cannot be exactly-once: if the worker dies after the relay accepted a message
    // and before the outbox row says so, the retry sends it again with the same recorded Message-ID, which
    // receivers collapse. So no email may arrive under a Message-ID the outbox did not record, and none may go
    // missing; a repeat is allowed only as the same message.
    const delivered = mails.filter((m) => (m.subject ?? '').includes(`${number} v1`) || outbox.some((o) => o.message_id === m.messageId));
    const ids = new Set(delivered.map((m) => m.messageId));
    assert.deepEqual([...ids].sort(), outbox.map((o) => o.message_id).sort(), 'each queued email arrived, under its recorded Message-ID');
    assert.ok(
      delivered.length <= outbox.length + 2,
      `at most the messages in flight at the two kills were repeated (${delivered.length - outbox.length})`,
    );
  });
});
