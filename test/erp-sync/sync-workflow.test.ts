import { stubActivityWorker } from '../helpers/stub-worker';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { WorkflowFailedError } from '@temporalio/client';
import { ApplicationFailure } from '@temporalio/common';
import { ErpFailure, type ErpSyncInput, type ErpSyncResult } from '../../common/erp-sync';
import type { erpSyncWorkflow } from '../../workflows';
import { testEnv } from '../setup/env';

/**
 * Stub sync activities that record each call (with the run it came from); `pages` is how many calls of
 * syncErpEntity each entity takes before it reports done.
 */
function stubs(opts: { configured?: boolean; pages?: number; failSync?: string } = {}) {
  const calls: string[] = [];
  const pagesLeft = new Map<string, number>();
  const activities = {
    async beginErpSyncRun() {
      calls.push('begin');
      return opts.configured ?? true;
    },
    async retryErpDeadLetters({ entity }: { entity: string }) {
      calls.push(`retry:${entity}`);
    },
    async syncErpEntity({ entity }: { entity: string }) {
      calls.push(`sync:${entity}`);
      if (opts.failSync) throw ApplicationFailure.create({ type: opts.failSync, message: 'the ERP refused the token', nonRetryable: true });
      const left = (pagesLeft.get(entity) ?? opts.pages ?? 1) - 1;
      pagesLeft.set(entity, left);
      return { done: left <= 0 };
    },
    async reconcileErpEntity({ entity }: { entity: string }) {
      calls.push(`reconcile:${entity}`);
    },
    async registerInspectionSamples() {
      calls.push('inspection');
      return [];
    },
    async markInspectionSamplesStarted() {
      calls.push('inspection-started');
    },
    async finishErpSyncRun({ state }: { state: string }) {
      calls.push(`finish:${state}`);
      return state === 'failed' ? { outboxIds: ['alert-1'] } : {};
    },
    async deliverEmails(ids: string[]) {
      calls.push(`mail:${ids.join(',')}`);
    },
  };
  return { activities, calls };
}

async function sync(stub: ReturnType<typeof stubs>, input: ErpSyncInput): Promise<{ result: ErpSyncResult; runs: number }> {
  const taskQueue = `erp-wf-${randomBytes(4).toString('hex')}`;
  const worker = await stubActivityWorker(taskQueue, stub.activities);
  const workflowId = `erp-sync:wf-test-${randomBytes(4).toString('hex')}`;
  return worker.runUntil(async () => {
    const handle = await testEnv().client.workflow.start<typeof erpSyncWorkflow>('erpSyncWorkflow', {
      workflowId,
      taskQueue,
      args: [input],
    });
    const result = await handle.result();
    // The chain of runs, each continued as new into the next, from each run's own history.
    let runs = 1;
    for (let runId = handle.firstExecutionRunId; ; runs += 1) {
      const history = await testEnv().client.workflow.getHandle(workflowId, runId).fetchHistory();
      const next = history.events?.at(-1)?.workflowExecutionContinuedAsNewEventAttributes?.newExecutionRunId;
      if (!next) break;
      runId = next;
    }
    return { result, runs };
  });
}

describe('the ERP sync workflow on its own (stub activities)', () => {
  it('syncs one entity page by page after retrying its dead letters, then finishes the run', async () => {
    const stub = stubs({ pages: 3 });
    const { result, runs } = await sync(stub, { scope: 'suppliers' });
    assert.equal(result.state, 'completed');
    assert.equal(runs, 1, 'within the activities a run may take, one run');
    assert.deepEqual(stub.calls, ['begin', 'retry:suppliers', 'sync:suppliers', 'sync:suppliers', 'sync:suppliers', 'finish:completed']);
  });

  it('continues as new between entities and within one after the activities a run may take, resuming mid-entity', async () => {
    const stub = stubs({ pages: 2 });
    const { result, runs } = await sync(stub, { scope: 'all', activitiesPerRun: 1 });
    assert.equal(result.state, 'completed');
    assert.deepEqual(stub.calls, [
      'begin',
      'retry:suppliers',
      'sync:suppliers',
      // a new run, mid-entity: its dead letters are not retried again
      'sync:suppliers',
      'retry:items',
      'sync:items',
      'sync:items',
      'retry:purchase_orders',
      'sync:purchase_orders',
      'sync:purchase_orders',
      'retry:purchase_receipts',
      'sync:purchase_receipts',
      'sync:purchase_receipts',
      'inspection',
      'retry:deletions',
      'sync:deletions',
      'sync:deletions',
      'finish:completed',
    ]);
    // A run per entity, and one more for each entity that needed a second activity: 5 entities × 2 activities.
    assert.equal(runs, 10);
  });

  it('compares counts entity by entity in a reconciliation, and skips the run when no ERP is configured', async () => {
    const reconcile = stubs();
    await sync(reconcile, { scope: 'all', mode: 'reconcile' });
    assert.deepEqual(reconcile.calls, [
      'begin',
      'reconcile:suppliers',
      'reconcile:items',
      'reconcile:purchase_orders',
      'reconcile:purchase_receipts',
      'finish:completed',
    ]);

    const none = stubs({ configured: false });
    const { result } = await sync(none, { scope: 'suppliers' });
    assert.equal(result.state, 'skipped');
    assert.deepEqual(none.calls, ['begin']);
  });

  it('fails the run on a refused token, records the failure and delivers its alert', async () => {
    const stub = stubs({ failSync: ErpFailure.Auth });
    await assert.rejects(
      sync(stub, { scope: 'suppliers' }),
      (err: unknown) => err instanceof WorkflowFailedError && (err.cause as ApplicationFailure).type === 'ErpSyncFailed',
    );
    assert.deepEqual(stub.calls, ['begin', 'retry:suppliers', 'sync:suppliers', 'finish:failed', 'mail:alert-1']);
  });
});
