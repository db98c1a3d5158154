import { stubActivityWorker } from '../helpers/stub-worker';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { WorkflowUpdateFailedError, type WorkflowHandle } from '@temporalio/client';
import type { ApplicationFailure } from '@temporalio/common';
import type { Actor } from '../../common/roles';
import {
  DECISION_UPDATES,
  retryErpWriteSignal,
  supplierQualificationQuery,
  type SupplierQualificationState,
} from '../../common/supplier-qualification';
import type { supplierQualificationWorkflow } from '../../workflows';
import { waitFor } from '../helpers/wait';
import { testEnv } from '../setup/env';

const qa: Actor = { userId: 'u-qa', username: 'quinn', printedName: 'Quinn QA', roles: ['qa_manager'] };
/** A well-formed grant ID: the stub activities accept any, as Postgres is not here to check it. */
const GRANT = 'g'.repeat(43);
type SupplierRun = WorkflowHandle<typeof supplierQualificationWorkflow>;

/** Stub activities: decisions are recorded, ERP writes answer as scripted in turn (then 'written'), emails counted. */
function stubs(erpAnswers: ('written' | 'refused')[]) {
  const recorded: string[] = [];
  const pushed: { seq: number; status: string }[] = [];
  const mailed: string[][] = [];
  const activities = {
    async recordSupplierDecision({ seq, decision }: { seq: number; decision: string }) {
      recorded.push(`${seq}:${decision}`);
    },
    async pushSupplierStatus({ seq, status }: { seq: number; status: string }) {
      pushed.push({ seq, status });
      const erp = erpAnswers.shift() ?? 'written';
      return erp === 'refused' ? { erp, detail: 'ERP refused the key', outboxIds: ['mail-1'] } : { erp, detail: 'hold set' };
    },
    async deliverEmails(ids: string[]) {
      mailed.push(ids);
    },
    /** The operator asked for the retry (Postgres is not here to say so). */
    async confirmErpRetry() {},
  };
  return { activities, recorded, pushed, mailed };
}

async function withRun(stub: ReturnType<typeof stubs>, drive: (run: SupplierRun) => Promise<void>) {
  const taskQueue = `supplier-wf-${randomBytes(4).toString('hex')}`;
  const worker = await stubActivityWorker(taskQueue, stub.activities);
  await worker.runUntil(async () => {
    const supplier = `SUP-${randomBytes(3).toString('hex')}`;
    const run = await testEnv().client.workflow.start<typeof supplierQualificationWorkflow>('supplierQualificationWorkflow', {
      workflowId: `supplier-qualification:${supplier}`,
      taskQueue,
      args: [{ supplier }],
    });
    try {
      await drive(run);
    } finally {
      if ((await run.describe()).status.name === 'RUNNING') await run.terminate('test over');
    }
  });
}

const stateWhen = (run: SupplierRun, what: string, done: (s: SupplierQualificationState) => boolean) =>
  waitFor(async () => {
    const state = await run.query(supplierQualificationQuery);
    return done(state) ? state : null;
  }, what);

describe('the supplier qualification workflow on its own (stub activities)', () => {
  it('records each decision and writes its status to the ERP; disqualification ends the run', async () => {
    const stub = stubs([]);
    await withRun(stub, async (run) => {
      const approved = await run.executeUpdate(DECISION_UPDATES.approve, { args: [{ actor: qa, grant: GRANT, reason: 'audit passed' }] });
      assert.equal(approved.status, 'approved');
      await stateWhen(run, 'the approval written', (s) => s.decisions[0]?.erp === 'written');
      await run.executeUpdate(DECISION_UPDATES.disqualify, { args: [{ actor: qa, grant: GRANT, reason: 'fraud' }] });
      const final = await run.result();
      assert.equal(final.status, 'disqualified');
      assert.deepEqual(
        final.decisions.map((d) => `${d.decision}:${d.erp}`),
        ['approve:written', 'disqualify:written'],
      );
    });
    assert.deepEqual(stub.recorded, ['1:approve', '2:disqualify']);
    assert.deepEqual(stub.pushed, [
      { seq: 1, status: 'approved' },
      { seq: 2, status: 'disqualified' },
    ]);
  });

  it('refuses a decision the status does not allow, and one by someone without the QA role, before it is recorded', async () => {
    const stub = stubs([]);
    await withRun(stub, async (run) => {
      await run.executeUpdate(DECISION_UPDATES.approve, { args: [{ actor: qa, grant: GRANT, reason: 'audit passed' }] });
      const refusal = (err: unknown) => (err instanceof WorkflowUpdateFailedError ? (err.cause as ApplicationFailure).type : String(err));
      const again = await run
        .executeUpdate(DECISION_UPDATES.approve, { args: [{ actor: qa, grant: GRANT, reason: 'twice' }] })
        .catch(refusal);
      assert.equal(again, 'WrongStage');
      const tech = { ...qa, username: 'tess', roles: ['lab_technician' as const] };
      const forbidden = await run
        .executeUpdate(DECISION_UPDATES.suspend, { args: [{ actor: tech, grant: GRANT, reason: 'late' }] })
        .catch(refusal);
      assert.equal(forbidden, 'Forbidden');
      const blank = await run.executeUpdate(DECISION_UPDATES.suspend, { args: [{ actor: qa, grant: GRANT, reason: '  ' }] }).catch(refusal);
      assert.equal(blank, 'InvalidInput');
    });
    assert.deepEqual(stub.recorded, ['1:approve']);
  });

  it('alerts on a refused ERP write and writes again only when an operator asks', async () => {
    const stub = stubs(['refused']);
    await withRun(stub, async (run) => {
      await run.executeUpdate(DECISION_UPDATES.suspend, { args: [{ actor: qa, grant: GRANT, reason: 'late deliveries' }] });
      await stateWhen(run, 'the refused write', (s) => s.decisions[0]?.erp === 'refused');
      await waitFor(() => stub.mailed.length === 1, 'the alert to be delivered');
      assert.equal(stub.pushed.length, 1, 'a refused write waits for the operator');
      await run.signal(retryErpWriteSignal);
      await stateWhen(run, 'the retried write', (s) => s.decisions[0]?.erp === 'written');
    });
    assert.deepEqual(stub.pushed, [
      { seq: 1, status: 'suspended' },
      { seq: 1, status: 'suspended' },
    ]);
    assert.deepEqual(stub.mailed, [['mail-1']]);
  });
});
