import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { Client, Connection } from '@temporalio/client';
import { verifyAuditChain } from '../../db/audit';
import { apiTemporalConnectionOptions } from '../../platform/temporal-connection';
import { approve, createDraft, getVersion, holdTask, submit, versionPath, waitForHeldDecision, waitForState } from '../helpers/documents';
import { startPlatform, type ApiResponse, type Platform } from '../helpers/platform';
import { makeUsers, type TestUser } from '../helpers/users';
import { waitFor } from '../helpers/wait';
import { killHard, spawnWorker } from '../helpers/worker-process';
import { testEnv } from '../setup/env';
import { testTemporalKind } from '../setup/test-temporal';

const assertUnavailable = (res: ApiResponse, what: string) => {
  assert.equal(res.status, 503, `${what}: ${JSON.stringify(res.body)}`);
  assert.match(res.headers.get('content-type') ?? '', /application\/problem\+json/, what);
  assert.equal(res.body.type, 'urn:labflow:problem:dependency-unavailable', what);
  assert.ok(Number(res.headers.get('retry-after')) > 0, `${what}: Retry-After`);
};

/**
 * The Temporal server (the cluster profile's, on PostgreSQL) killed with SIGKILL while a reviewer's approval is being
 * recorded, then started again on the same databases and ports. The API and the worker are not restarted: the API
 * answers 503 problem+json meanwhile, and both find the server again by themselves. The approval the run had
 * accepted is recorded once; later approvals work and the version becomes effective.
 */
describe('the Temporal server killed with SIGKILL mid-approval and started again', function () {
  this.timeout(300_000);
  let p: Platform;
  let connection: Connection;
  let worker: ChildProcess | undefined;
  let u: Record<'author' | 'rita' | 'rick' | 'april', TestUser>;

  before(async function () {
    // Only the cluster profile (scripts/test-cluster.sh) runs a server process of its own that a test may kill.
    if (testTemporalKind() !== 'cluster') this.skip();
    const env = testEnv();
    // The API's own connection, with the short retries production gives it, so a person hears 503 in seconds.
    connection = Connection.lazy(
      apiTemporalConnectionOptions(env.temporalEnv as unknown as Parameters<typeof apiTemporalConnectionOptions>[0]),
    );
    const client = new Client({ connection, dataConverter: env.dataConverter });
    p = await startPlatform({ withWorker: false, temporal: { client, nativeConnection: env.nativeConnection } });
    worker = await spawnWorker(p.taskQueue);
    u = await makeUsers({ author: ['author'], rita: ['reviewer'], rick: ['reviewer'], april: ['approver'] });
  });
  after(async () => {
    if (worker) await killHard(worker);
    await p?.stop();
    await connection?.close();
  });

  it('answers 503 while it is down, records the accepted approval once, and carries on with no restart of the worker or the API', async () => {
    const env = testEnv();
    const { db } = env;
    const server = env.temporalServer!;
    const { number, contentHash } = await createDraft(p, u.author, undefined, 'Balance calibration specification', 'specification');
    const { workflowId } = await submit(p, u.author, number, 1, {
      routing: [
        { name: 'Technical review', assignees: [{ user: u.rita.username }, { user: u.rick.username }] },
        { name: 'QA approval', assignees: [{ user: u.april.username }] },
      ],
    });
    await waitFor(async () => (await getVersion(p, u.author.apiKey, number, 1)).process?.stages[0].status === 'active', 'stage 1 active');
    const other = await createDraft(p, u.author);

    // Rita signs while the server dies. Her open task row is held locked, so the activity recording the decision the
    // run accepted blocks inside its transaction: acknowledged by the run, not yet written.
    const ritaTask = `${workflowId}:r1:s0:user:${u.rita.username}`;
    const lock = await holdTask(ritaTask);
    try {
      const ritaSigns = approve(p, u.rita, number, 1, contentHash);
      await waitForHeldDecision(workflowId, "Rita's decision");

      await server.kill();
      assertUnavailable(await ritaSigns, 'the approval in flight when the server died');
      assertUnavailable(
        await p.api('POST', `${versionPath(number, 1)}/decisions`, {
          key: u.rick.apiKey,
          body: { decision: 'approve', signature: { password: u.rick.password, meaning: 'approval', contentHash } },
        }),
        'an approval sent while the server is down',
      );
      assertUnavailable(
        await p.api('POST', `${versionPath(other.number, other.version)}/submit`, {
          key: u.author.apiKey,
          body: { routing: [{ name: 'Review', assignees: [{ user: u.rick.username }] }] },
        }),
        'a submission sent while the server is down',
      );
      const ready = await p.api('GET', '/readyz');
      assert.equal(ready.status, 503);
      assert.match(ready.body.checks.temporal, /^down/);
      const read = await getVersion(p, u.author.apiKey, number, 1);
      assert.equal(read.live, false, 'a version is read from the record while the server is down');

      // The worker's write goes through while the server is down: PostgreSQL holds Rita's decision, Temporal has not
      // heard that it was recorded.
      await lock.rollback();
    } finally {
      if (!lock.isCompleted()) await lock.rollback();
    }
    await waitFor(
      async () => (await db('tasks').where({ task_key: ritaTask }).first('state')).state === 'done',
      "Rita's decision written to PostgreSQL while the server is down",
    );

    await server.restart();
    await waitFor(async () => ((await p.api('GET', '/readyz')).status === 200 ? true : null), 'the API to find the server again', 120_000);
    // The decision the run accepted before the kill completes once the server is back (the activity's report, or its
    // retry after the timeout, which finds the decision written).
    await waitFor(
      async () => {
        const { events } = await env.client.workflow.getHandle(workflowId).fetchHistory();
        return (events ?? []).some((e) => e.workflowExecutionUpdateCompletedEventAttributes);
      },
      "Rita's decision to complete in the run",
      120_000,
    );
    const again = await approve(p, u.rita, number, 1, contentHash);
    assert.equal(again.status, 409, `Rita's retry after the 503 is refused as already decided: ${JSON.stringify(again.body)}`);

    // Neither the worker nor the API was restarted; both carry on.
    const rickSigns = await waitFor(async () => {
      const res = await approve(p, u.rick, number, 1, contentHash);
      return res.status === 503 ? null : res;
    }, "Rick's approval once the server is back");
    assert.equal(rickSigns.status, 200, JSON.stringify(rickSigns.body));
    await waitFor(
      async () => (await getVersion(p, u.author.apiKey, number, 1)).process?.stages[1].status === 'active',
      'stage 2 active',
      60_000,
    );
    assert.equal((await approve(p, u.april, number, 1, contentHash)).status, 200);
    await waitForState(p, u.author.apiKey, number, 1, 'effective', 60_000);
    assert.equal(worker!.exitCode, null, 'the worker process was never restarted');
    assert.equal((await getVersion(p, u.author.apiKey, other.number, other.version)).state, 'draft', 'the refused submission left a draft');

    const signers: string[] = await db('signatures').where({ workflow_id: workflowId }).orderBy('username').pluck('username');
    assert.deepEqual(signers, [u.april.username, u.rick.username, u.rita.username].sort(), 'one signature per signer');
    const actions: string[] = await db('audit_events').where({ entity_type: 'document', entity_id: number }).orderBy('seq').pluck('action');
    const count = (action: string) => actions.filter((a) => a === action).length;
    assert.equal(count('document.decision.approve'), 3, 'one audit event per decision');
    assert.equal(count('document.stage_opened'), 2);
    assert.equal(count('document.stage_closed'), 2);
    assert.equal(count('document.approved'), 1);
    assert.equal(count('document.effective'), 1);
    assert.equal((await verifyAuditChain(db)).ok, true, 'the audit chain verifies');

    // Each email the run queued arrives once, under its recorded Message-ID: the worker was never killed, so no send
    // was cut off half-way.
    const outbox = await db('email_outbox').where('idempotency_key', 'like', `${workflowId}:%`).select('message_id');
    assert.ok(outbox.length >= 4, `emails were queued (${outbox.length})`);
    const ids = outbox.map((o) => o.message_id).sort();
    await waitFor(() => ids.every((id) => env.mails.some((m) => m.messageId === id)), 'every queued email delivered', 90_000);
    const delivered = env.mails
      .filter((m) => ids.includes(m.messageId))
      .map((m) => m.messageId)
      .sort();
    assert.deepEqual(delivered, ids, 'each queued email arrived once');
  });
});
