import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { startPlatform, type Platform } from '../helpers/platform';
import type { TestUser } from '../helpers/users';
import { waitFor } from '../helpers/wait';
import { killHard, spawnWorker } from '../helpers/worker-process';
import { labUsers, mustAnalysisAct, routedSample, sign, testCode } from '../results/support';
import { testEnv } from '../setup/env';
import { assembled, pdfOf, release, sha256 } from './support';

describe('a report run whose worker is killed with SIGKILL during report generation', function () {
  this.timeout(240_000);
  let p: Platform;
  let u: Record<'doc' | 'tech' | 'tech2' | 'tech3' | 'director', TestUser>;
  let worker: ChildProcess | undefined;
  before(async () => {
    p = await startPlatform({ withWorker: false });
    u = await labUsers();
    worker = await spawnWorker(p.taskQueue);
  });
  after(async () => {
    if (worker) await killHard(worker);
    await p.stop();
  });

  /** The activity as the server holds it: started on a worker (which is then busy inside it). */
  const startedActivity = (workflowId: string, activityType: string) =>
    waitFor(
      async () => {
        // The run may not have been started yet.
        const raw = await testEnv()
          .client.workflow.getHandle(workflowId)
          .describe()
          .then((d) => d.raw)
          .catch(() => null);
        const pending = raw?.pendingActivities?.find((a) => a.activityType?.name === activityType);
        return pending?.lastStartedTime ? pending : null;
      },
      `${activityType} started on ${workflowId}`,
      60_000,
    );

  /** The activity's last try as the history records it: its attempt number shows a retry after the kill. */
  const lastTryOf = async (workflowId: string, activityType: string) => {
    const history = await testEnv().client.workflow.getHandle(workflowId).fetchHistory();
    const scheduled = history.events?.find((e) => e.activityTaskScheduledEventAttributes?.activityType?.name === activityType);
    assert.ok(scheduled, `${activityType} was scheduled`);
    const started = history.events?.find((e) => String(e.activityTaskStartedEventAttributes?.scheduledEventId) === String(scheduled.eventId));
    return started?.activityTaskStartedEventAttributes?.attempt ?? 0;
  };

  /** Kills the worker while the reports table is held (so the activity is stuck at its first write), then frees both. */
  async function killDuring(workflowId: string, activityType: string, start: () => Promise<unknown>) {
    const { db } = testEnv();
    const hold = await db.transaction();
    let started: Promise<unknown>;
    try {
      await hold.raw('lock table reports in exclusive mode');
      started = start();
      await startedActivity(workflowId, activityType);
      await killHard(worker!);
    } finally {
      await hold.rollback();
    }
    worker = await spawnWorker(p.taskQueue);
    return started;
  }

  it('assembles and releases exactly one report version, retried on a new worker', async () => {
    const { db } = testEnv();
    const test = await testCode();
    const accession = await routedSample(p, u.doc, u.tech, [test]);
    await mustAnalysisAct(p, u.tech, accession, test, 'result', { kind: 'numeric', value: 4.4, unit: 'mmol/L', performedBy: 'bench 3' });
    await mustAnalysisAct(p, u.tech, accession, test, 'submit');
    const workflowId = `report:${accession}:v1`;

    // The verification that completes the set starts the report run; the worker dies inside its assembly.
    const verified = (await killDuring(workflowId, 'assembleReport', () => sign(p, u.tech2, accession, test, 'verify'))) as { status: number };
    assert.equal(verified.status, 200);
    const v1 = await assembled(p, u.director, accession);
    assert.equal(v1.state, 'awaiting_release');
    assert.ok((await lastTryOf(workflowId, 'assembleReport')) >= 2, 'the assembly was retried after the kill');

    // The worker dies again inside the release (the PDF's generation); the lab director's request still succeeds.
    const released = (await killDuring(workflowId, 'releaseReport', () => release(p, u.director, accession, 1))) as {
      status: number;
      body: { pdfSha256: string };
    };
    assert.equal(released.status, 200, JSON.stringify(released.body));
    assert.ok((await lastTryOf(workflowId, 'releaseReport')) >= 2, 'the release was retried after the kill');

    const rows = await db('reports').where({ accession });
    assert.equal(rows.length, 1, 'exactly one report version');
    assert.deepEqual([rows[0].version, rows[0].state], [1, 'released']);
    assert.equal(rows[0].pdf_sha256, released.body.pdfSha256);
    assert.equal(sha256((await pdfOf(p, u.doc, accession, 1)).bytes), rows[0].pdf_sha256);
    const trail = await db('audit_events').where({ entity_type: 'report', entity_id: workflowId }).pluck('action');
    assert.deepEqual(trail.filter((a: string) => a === 'report.released'), ['report.released']);
    assert.equal((await db('signatures').where({ entity_type: 'report', entity_id: workflowId })).length, 1);
    assert.equal((await db('domain_events').where({ type: 'report.released', entity_id: workflowId })).length, 1);
  });
});
