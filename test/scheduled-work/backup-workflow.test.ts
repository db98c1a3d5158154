import { stubActivityWorker } from '../helpers/stub-worker';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { WorkflowFailedError } from '@temporalio/client';
import { ApplicationFailure } from '@temporalio/common';
import type { BackupInput, BackupResult, BackupSettings } from '../../common/scheduled-work';
import { Stage } from '../../common/search-attributes';
import type { backupWorkflow } from '../../workflows';
import { testEnv } from '../setup/env';

const settings: BackupSettings = {
  dir: '/nonexistent/backups',
  offsiteDir: null,
  compression: 1,
  encryptionKeyFile: null,
  sizeBandPercent: 50,
  retention: { daily: 7, weekly: 4, monthly: 12 },
  timeZone: 'UTC',
  pgUser: null,
  heartbeatTimeout: '10s',
};

/** Stub backup steps that record their order; `failAt` makes one of them fail for good. */
function stubs(failAt?: string) {
  const steps: string[] = [];
  const step =
    <R>(name: string, result: R) =>
    async () => {
      steps.push(name);
      if (name === failAt) throw ApplicationFailure.nonRetryable(`${name} broke`, 'DumpFailed');
      return result;
    };
  const activities = {
    backupBegin: step('begin', undefined),
    backupPreflight: step('preflight', undefined),
    backupDump: step('dump', undefined),
    backupVerify: step('verify', undefined),
    backupShip: step('ship', undefined),
    backupMarkVerified: step('markVerified', { dumpBytes: 1234, sha256: 'abc' }),
    backupApplyRetention: step('retention', { kept: 3, expired: 1 }),
    async backupMarkFailed({ reason }: { reason: string }) {
      steps.push(`markFailed:${reason}`);
      return { outboxIds: ['alert-1'] };
    },
    async deliverEmails(ids: string[]) {
      steps.push(`mail:${ids.join(',')}`);
    },
  };
  return { activities, steps };
}

async function runBackup(stub: ReturnType<typeof stubs>): Promise<{ result: Promise<BackupResult>; stage: () => Promise<unknown> }> {
  const taskQueue = `backup-wf-${randomBytes(4).toString('hex')}`;
  const worker = await stubActivityWorker(taskQueue, stub.activities);
  const workflowId = `backup:wf-test-${randomBytes(4).toString('hex')}`;
  const outcome = worker.runUntil(
    testEnv().client.workflow.execute<typeof backupWorkflow>('backupWorkflow', {
      workflowId,
      taskQueue,
      args: [{ settings, trigger: 'manual' } satisfies BackupInput],
    }),
  );
  const stage = async () => (await testEnv().client.workflow.getHandle(workflowId).describe()).typedSearchAttributes.get(Stage);
  return { result: outcome, stage };
}

describe('the backup workflow on its own (stub activities)', () => {
  it('runs preflight, dump, verify, ship, marks the backup verified, then applies retention', async () => {
    const stub = stubs();
    const { result, stage } = await runBackup(stub);
    const backup = await result;
    assert.equal(backup.state, 'verified');
    assert.deepEqual(backup.retention, { kept: 3, expired: 1 });
    assert.equal(backup.dumpBytes, 1234);
    assert.deepEqual(stub.steps, ['begin', 'preflight', 'dump', 'verify', 'ship', 'markVerified', 'retention']);
    assert.equal(await stage(), 'verified');
  });

  it('marks a failed backup failed, alerts IT operators, applies no retention and fails the run as BackupFailed', async () => {
    const stub = stubs('dump');
    const { result, stage } = await runBackup(stub);
    await assert.rejects(
      result,
      (err: unknown) => err instanceof WorkflowFailedError && (err.cause as ApplicationFailure).type === 'BackupFailed',
    );
    assert.deepEqual(stub.steps, ['begin', 'preflight', 'dump', 'markFailed:dump broke', 'mail:alert-1']);
    assert.equal(await stage(), 'failed');
  });
});
