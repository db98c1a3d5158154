import { stubActivityWorker } from '../helpers/stub-worker';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { WorkflowUpdateFailedError, type WorkflowHandle } from '@temporalio/client';
import { ApplicationFailure } from '@temporalio/common';
import { type Worker } from '@temporalio/worker';
import type { Activities } from '../../activities';
import type { Actor } from '../../common/roles';
import {
  acceptUpdate,
  acceptWithDeviationUpdate,
  cancelUpdate,
  inspectUpdate,
  receiveUpdate,
  reinstateUpdate,
  rejectUpdate,
  routeUpdate,
  sampleEventSignal,
  sampleIntakeStartOptions,
  sampleStateQuery,
  storeUpdate,
  type IntakeTimers,
  type SampleIntakeInput,
} from '../../common/sample-intake';
import type { sampleBatchWorkflow, sampleIntakeWorkflow } from '../../workflows';
import { waitFor } from '../helpers/wait';
import { testEnv } from '../setup/env';
import { GOOD, SERUM, WELL_FORMED_GRANT, sampleInput } from './support';

/** The real sample-intake workflow on the dev server, with activities that only record what they were asked. */

const LONG: IntakeTimers = { inTransitDue: '1h', specimenHold: '1h', orderHold: '1h', statTurnaround: '1h', cancelRetention: '1h' };
const tech: Actor = { userId: 'u-tech', username: 'tina.tech', printedName: 'Tina Tech', roles: ['lab_technician'] };
const director: Actor = { userId: 'u-dir', username: 'dan.director', printedName: 'Dan Director', roles: ['lab_director'] };
const clinician: Actor = { userId: 'u-doc', username: 'doc', printedName: 'Doc', roles: ['clinician'] };

interface Call {
  name: string;
  args: Record<string, unknown> & { ref?: { workflowId: string }; action?: string };
}

describe('the sample-intake workflow with stub activities', () => {
  const taskQueue = `test-sample-wf-${randomBytes(4).toString('hex')}`;
  const calls: Call[] = [];
  const batchPages = new Map<string, SampleIntakeInput[]>();
  let worker: Worker;
  let running: Promise<void>;

  const record =
    <R>(name: string, answer: (args: Call['args']) => R) =>
    async (args: Call['args']) => {
      calls.push({ name, args });
      return answer(args);
    };
  /** Stands for a grant or a delivery the recording step finds invalid. */
  const REFUSED = 'r'.repeat(43);
  const refusedProof = (args: Call['args']) => {
    const proof = args.proof as { grant?: string; event?: { delivery?: { eventId?: string } } } | undefined;
    if (proof?.grant === REFUSED || proof?.event?.delivery?.eventId === REFUSED) {
      throw ApplicationFailure.create({ type: 'GrantRefused', message: 'refused by the stub', nonRetryable: true });
    }
  };
  const stubs: Partial<Record<keyof Activities, unknown>> = {
    recordSampleStep: record('recordSampleStep', (args) => {
      refusedProof(args);
      return {
        signatureId: null,
        actor: (args.proof as { kind: string }).kind === 'person' ? { ...tech, username: 'tina.from.postgres' } : null,
      };
    }),
    rejectSample: record('rejectSample', () => ({ outboxIds: ['outbox-1'], capaRequestId: null })),
    createAliquots: record('createAliquots', () => undefined),
    storeSample: record('storeSample', (args) => {
      if (args.position === 'TAKEN') {
        throw ApplicationFailure.create({ type: 'PositionTaken', message: 'position taken meanwhile', nonRetryable: true });
      }
    }),
    routeTests: record('routeTests', (args) =>
      (args.tests as { test: string; piece: string }[]).map((t) => ({ ...t, workQueue: 'chemistry' })),
    ),
    recordResults: record('recordResults', refusedProof),
    // No analysis runs here (their activities are not stubbed): the sample completes on its instrument results.
    sampleTestsSettled: () => ({ settled: false, analyses: 0 }),
    cancelAnalysesOfRejection: () => ({ workflowIds: [] }),
    // A specimen rejected in full asks whether its report is due; no report run is stubbed, so none is.
    reportDue: record('reportDue', () => ({ workflowId: null })),
    sampleTimerFired: record('sampleTimerFired', () => ['outbox-timer']),
    deliverEmails: record('deliverEmails', () => undefined),
    batchSamplePage: record('batchSamplePage', (args) => {
      const page = batchPages.get(args.batchId as string) ?? [];
      const after = args.after as string | null;
      return page.filter((s) => !after || s.accession > after).slice(0, args.limit as number);
    }),
  };

  before(async () => {
    worker = await stubActivityWorker(taskQueue, stubs);
    running = worker.run();
  });
  after(async () => {
    worker.shutdown();
    await running;
  });

  let seq = 0;
  const accession = () => `ACC-${String(Date.now() % 1e8).padStart(8, '0')}${String(seq++).padStart(2, '0')}`;
  const inputOf = (acc: string, over: Partial<SampleIntakeInput> = {}): SampleIntakeInput => sampleInput(acc, LONG, over);
  const start = (over: Partial<SampleIntakeInput> = {}) => {
    const input = inputOf(accession(), over);
    return testEnv().client.workflow.start<typeof sampleIntakeWorkflow>('sampleIntakeWorkflow', {
      ...sampleIntakeStartOptions(input.accession),
      taskQueue,
      args: [input],
    });
  };
  const callsOf = (handle: WorkflowHandle) => calls.filter((c) => c.args.ref?.workflowId === handle.workflowId);
  const stepsOf = (handle: WorkflowHandle) => callsOf(handle).map((c) => (c.name === 'recordSampleStep' ? c.args.action : c.name));
  const receive = (handle: WorkflowHandle, over: Record<string, unknown> = {}) =>
    handle.executeUpdate(receiveUpdate, {
      args: [
        {
          actor: tech,
          grant: WELL_FORMED_GRANT,
          by: tech.username,
          receivedAt: new Date().toISOString(),
          location: 'Bench 1',
          temperatureC: 4,
          ...over,
        },
      ],
    });
  const refusedWith = async (action: Promise<unknown>, type: string) => {
    await assert.rejects(action, (err: unknown) => {
      assert.ok(err instanceof WorkflowUpdateFailedError, String(err));
      assert.ok(err.cause instanceof ApplicationFailure, String(err.cause));
      assert.equal(err.cause.type, type, err.cause.message);
      return true;
    });
  };

  it('receives, inspects, accepts, routes and completes once every result is in, recording each step in order', async () => {
    const handle = await start();
    await receive(handle);
    const inspected = await handle.executeUpdate(inspectUpdate, { args: [{ actor: tech, grant: WELL_FORMED_GRANT, findings: GOOD }] });
    assert.equal(inspected.state, 'inspected');
    assert.equal(inspected.inspection?.passed, true);
    assert.match(inspected.inspection?.contentHash ?? '', /^[0-9a-f]{64}$/, 'the run computes the hash a signer signs');
    const accepted = await handle.executeUpdate(acceptUpdate, { args: [{ actor: tech, grant: WELL_FORMED_GRANT }] });
    assert.deepEqual([accepted.state, accepted.decision?.kind, accepted.decision?.by], ['accepted', 'accepted', 'tina.from.postgres']);
    const routed = await handle.executeUpdate(routeUpdate, { args: [{ actor: tech, grant: WELL_FORMED_GRANT }] });
    assert.deepEqual(
      routed.routes.map((r) => [r.test, r.workQueue]),
      [
        ['CMP', 'chemistry'],
        ['TSH', 'chemistry'],
      ],
    );
    await handle.signal(sampleEventSignal, {
      eventId: 'r-1',
      source: 'analyzer',
      type: 'result_ready',
      at: new Date().toISOString(),
      tests: ['CMP', 'TSH'],
    });
    const final = await handle.result();
    assert.equal(final.state, 'completed');
    assert.deepEqual(stepsOf(handle), [
      'sample.received',
      'sample.inspected',
      'sample.accepted',
      'routeTests',
      'recordResults',
      'sample.completed',
    ]);
    const receipt = callsOf(handle)[0].args;
    assert.deepEqual(receipt.receipt && Object.keys(receipt.receipt as object), ['receivedAt', 'by', 'location', 'collectedAt']);
    assert.deepEqual(receipt.task, {
      stage: 'received',
      next: 'inspect',
      assignee: { kind: 'role', role: 'lab_technician' },
      dueAt: receipt.dueAt,
    });
    assert.equal(callsOf(handle).at(-1)?.args.task, null, 'completion closes the open task');
  });

  it('refuses what the stage or the role does not allow, without recording anything', async () => {
    const handle = await start();
    await refusedWith(handle.executeUpdate(acceptUpdate, { args: [{ actor: tech, grant: WELL_FORMED_GRANT }] }), 'WrongStage');
    await refusedWith(receive(handle, { actor: clinician, grant: WELL_FORMED_GRANT }), 'Forbidden');
    await refusedWith(receive(handle, { collectedAt: new Date(Date.now() + 60_000).toISOString() }), 'InvalidInput');
    await refusedWith(
      handle.executeUpdate(cancelUpdate, { args: [{ actor: tech, grant: WELL_FORMED_GRANT, reason: '  ' }] }),
      'InvalidInput',
    );
    assert.deepEqual(stepsOf(handle), []);
    await handle.terminate('test done');
  });

  it('sends a failed inspection to the director, who accepts it with a deviation signed over the current hash', async () => {
    const handle = await start();
    await receive(handle);
    const inspected = await handle.executeUpdate(inspectUpdate, {
      args: [{ actor: tech, grant: WELL_FORMED_GRANT, findings: { ...GOOD, hemolyzed: true } }],
    });
    assert.equal(inspected.inspection?.passed, false);
    assert.deepEqual((await handle.describe()).searchAttributes.Assignees, ['role:lab_director']);
    await refusedWith(handle.executeUpdate(acceptUpdate, { args: [{ actor: tech, grant: WELL_FORMED_GRANT }] }), 'InvalidInput');
    const signature = { meaning: 'approval', contentHash: inspected.inspection?.contentHash ?? '', signedAt: new Date().toISOString() };
    const stale = { ...signature, contentHash: 'f'.repeat(64) };
    await refusedWith(
      handle.executeUpdate(acceptWithDeviationUpdate, {
        args: [{ actor: director, grant: WELL_FORMED_GRANT, comment: 'ok', signature: stale }],
      }),
      'StaleContentHash',
    );
    const accepted = await handle.executeUpdate(acceptWithDeviationUpdate, {
      args: [{ actor: director, grant: WELL_FORMED_GRANT, comment: 'run with disclaimer', signature }],
    });
    assert.equal(accepted.state, 'accepted_with_deviation');
    const step = callsOf(handle).at(-1)?.args;
    assert.deepEqual(
      [step?.action, step?.deviation, (step?.details as { failed: string[] }).failed],
      ['sample.accepted_with_deviation', { comment: 'run with disclaimer' }, ['hemolysis']],
    );
    await handle.terminate('test done');
  });

  it('rejects some tests, then the rest, ending the run with the rejection and its emails delivered', async () => {
    const handle = await start();
    await receive(handle);
    await handle.executeUpdate(inspectUpdate, { args: [{ actor: tech, grant: WELL_FORMED_GRANT, findings: GOOD }] });
    await handle.executeUpdate(acceptUpdate, { args: [{ actor: tech, grant: WELL_FORMED_GRANT }] });
    const rejection = {
      actor: tech,
      grant: WELL_FORMED_GRANT,
      code: 'RH' as const,
      condition: 'hemolyzed on spin',
      disposition: 'discarded' as const,
    };
    await refusedWith(handle.executeUpdate(rejectUpdate, { args: [{ ...rejection, tests: ['NOPE'] }] }), 'InvalidInput');
    const partly = await handle.executeUpdate(rejectUpdate, { args: [{ ...rejection, tests: ['TSH'] }] });
    assert.deepEqual([partly.state, partly.rejectedTests], ['accepted', ['TSH']]);
    const full = await handle.executeUpdate(rejectUpdate, { args: [rejection] });
    assert.equal(full.state, 'rejected');
    assert.equal((await handle.result()).state, 'rejected');
    const rejections = callsOf(handle).filter((c) => c.name === 'rejectSample');
    assert.deepEqual(
      rejections.map((c) => [c.args.tests, c.args.full]),
      [
        [['TSH'], false],
        [['CMP'], true],
      ],
    );
    assert.equal(calls.filter((c) => c.name === 'deliverEmails' && (c.args as unknown as string[])[0] === 'outbox-1').length >= 2, true);
    const asked = calls.filter((c) => c.name === 'reportDue' && c.args.accession === full.accession);
    assert.equal(asked.length, 1, 'the full rejection asked once whether its report is due');
  });

  it('refuses a store on a position taken meanwhile and leaves the sample where it was', async () => {
    const handle = await start();
    await receive(handle);
    await handle.executeUpdate(inspectUpdate, { args: [{ actor: tech, grant: WELL_FORMED_GRANT, findings: GOOD }] });
    await handle.executeUpdate(acceptUpdate, { args: [{ actor: tech, grant: WELL_FORMED_GRANT }] });
    const place = { actor: tech, grant: WELL_FORMED_GRANT, freezer: 'F1', rack: 'R1', box: 'B1' };
    const piece = (await handle.query(sampleStateQuery)).accession;
    await refusedWith(handle.executeUpdate(storeUpdate, { args: [{ ...place, piece, position: 'TAKEN' }] }), 'PositionTaken');
    const after = await handle.query(sampleStateQuery);
    assert.deepEqual([after.state, after.storage, after.stage], ['accepted', [], 'accepted']);
    const stored = await handle.executeUpdate(storeUpdate, { args: [{ ...place, piece, position: 'A1' }] });
    assert.equal(stored.state, 'stored');
    await refusedWith(handle.executeUpdate(storeUpdate, { args: [{ ...place, piece, position: 'A1' }] }), 'PositionTaken');
    await handle.terminate('test done');
  });

  it('fires the STAT turnaround and the stability timers once each, with second-scale durations', async () => {
    // Stable 20 s at room temperature from a collection just now; STAT results due 2 s after receipt (well before).
    const handle = await start({
      priority: 'stat',
      collectedAt: new Date().toISOString(),
      criteria: { ...SERUM, stability: { room: '20s' } },
      timers: { ...LONG, statTurnaround: '2s' },
    });
    await receive(handle, { temperatureC: 20 });
    const fired = await waitFor(
      () => {
        const kinds = callsOf(handle)
          .filter((c) => c.name === 'sampleTimerFired')
          .map((c) => c.args.kind);
        return kinds.length === 2 && kinds;
      },
      'both timers fired',
      45_000,
    );
    assert.deepEqual(fired, ['stat_overdue', 'stability_expired']);
    const state = await handle.query(sampleStateQuery);
    assert.deepEqual(state.timersFired, ['stat_overdue', 'stability_expired']);
    assert.equal(state.dueAt, null, 'nothing left to wait for');
    await waitFor(() => calls.filter((c) => c.name === 'deliverEmails').length > 0, 'timer emails delivered');
    await handle.terminate('test done');
  });

  it('ends a cancelled sample nobody reinstates after the retention period, and keeps one reinstated in time', async () => {
    const kept = await start({ timers: { ...LONG, cancelRetention: '30s' } });
    await receive(kept);
    await kept.executeUpdate(cancelUpdate, { args: [{ actor: tech, grant: WELL_FORMED_GRANT, reason: 'duplicate draw' }] });
    await refusedWith(
      kept.executeUpdate(reinstateUpdate, { args: [{ actor: clinician, grant: WELL_FORMED_GRANT, reason: 'not a duplicate' }] }),
      'Forbidden',
    );
    const reinstated = await kept.executeUpdate(reinstateUpdate, {
      args: [{ actor: tech, grant: WELL_FORMED_GRANT, reason: 'not a duplicate' }],
    });
    assert.deepEqual([reinstated.state, reinstated.cancelledFrom, reinstated.cancelReason], ['received', null, null]);

    const dropped = await start({ timers: { ...LONG, cancelRetention: '1s' } });
    await dropped.executeUpdate(cancelUpdate, { args: [{ actor: tech, grant: WELL_FORMED_GRANT, reason: 'order withdrawn' }] });
    const final = await dropped.result();
    assert.deepEqual([final.state, final.cancelledFrom, final.cancelReason], ['cancelled', 'expected', 'order withdrawn']);
    assert.deepEqual(stepsOf(dropped), ['sample.cancelled']);
    assert.equal(callsOf(dropped)[0].args.cancelReason, 'order withdrawn');
    await kept.terminate('test done');
  });

  it('applies a machine event once, however often it is delivered', async () => {
    const handle = await start();
    const shipped = { eventId: 'courier:1', source: 'courier', type: 'shipped' as const, at: new Date().toISOString() };
    await handle.signal(sampleEventSignal, shipped);
    await handle.signal(sampleEventSignal, shipped);
    // A later event is the marker that the run has taken in both deliveries before it.
    await handle.signal(sampleEventSignal, { ...shipped, eventId: 'courier:2', type: 'received', location: 'Dock' });
    await waitFor(async () => (await handle.query(sampleStateQuery)).state === 'received', 'received');
    await waitFor(() => stepsOf(handle).length === 2, 'two steps recorded');
    assert.deepEqual(stepsOf(handle), ['sample.shipped', 'sample.received']);
    await handle.terminate('test done');
  });

  it('gives back an action whose proof the recording step refuses, and takes the next one as if it never came', async () => {
    const handle = await start();
    const received = await receive(handle);
    assert.equal(received.receivedBy, 'tina.from.postgres', 'the run shows whom Postgres recorded, not whom it was told');
    await refusedWith(handle.executeUpdate(inspectUpdate, { args: [{ actor: tech, grant: REFUSED, findings: GOOD }] }), 'GrantRefused');
    const after = await handle.query(sampleStateQuery);
    assert.deepEqual([after.state, after.inspection, after.stage], ['received', null, 'received']);
    await refusedWith(handle.executeUpdate(acceptUpdate, { args: [{ actor: tech, grant: WELL_FORMED_GRANT }] }), 'WrongStage');
    const inspected = await handle.executeUpdate(inspectUpdate, { args: [{ actor: tech, grant: WELL_FORMED_GRANT, findings: GOOD }] });
    assert.equal(inspected.state, 'inspected');
    assert.equal((await handle.describe()).status.name, 'RUNNING');
    await handle.terminate('test done');
  });

  it('gives back a machine event its delivery does not bear out, and still applies the real delivery of that event ID', async () => {
    const handle = await start();
    const shipped = { eventId: 'courier:9', source: 'courier', type: 'shipped' as const, at: new Date().toISOString() };
    await handle.signal(sampleEventSignal, { ...shipped, delivery: { source: 'courier', eventId: REFUSED } });
    await waitFor(() => callsOf(handle).some((c) => c.name === 'recordSampleStep'), 'the forged event reached the recording step');
    await waitFor(async () => (await handle.query(sampleStateQuery)).appliedEvents.length === 0 || null, 'the forged event forgotten');
    const state = await handle.query(sampleStateQuery);
    assert.deepEqual([state.state, state.shippedAt], ['expected', null]);
    await handle.signal(sampleEventSignal, { ...shipped, delivery: { source: 'courier', eventId: '9' } });
    await waitFor(async () => (await handle.query(sampleStateQuery)).state === 'in_transit' || null, 'the real event applied');
    assert.equal((await handle.describe()).status.name, 'RUNNING');
    await handle.terminate('test done');
  });

  it('starts one run per sample of a batch, and a second batch run over the same samples joins them', async () => {
    const batchId = `batch-${randomBytes(4).toString('hex')}`;
    const samples = [accession(), accession(), accession()].map((acc) => inputOf(acc));
    batchPages.set(batchId, samples);
    const run = (id: string) =>
      testEnv().client.workflow.execute<typeof sampleBatchWorkflow>('sampleBatchWorkflow', {
        workflowId: id,
        taskQueue,
        args: [{ batchId, concurrency: 2, pageSize: 2, timers: LONG }],
      });
    assert.deepEqual(await run(`sample-batch:${batchId}`), { started: 3 });
    assert.deepEqual(await run(`sample-batch:${batchId}:again`), { started: 3 });
    for (const s of samples) {
      const child = testEnv().client.workflow.getHandle(`sample-intake:${s.accession}`);
      const described = await child.describe();
      assert.equal(described.status.name, 'RUNNING');
      assert.equal(described.searchAttributes.EntityId?.[0], s.accession);
      await child.terminate('test done');
    }
  });
});
