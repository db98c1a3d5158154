import assert from 'node:assert/strict';
import { ScheduleNotFoundError } from '@temporalio/client';
import { DEFAULT_SCHEDULE_OWNER, SCHEDULE_IDS, SCHEDULE_OWNER_MEMO } from '../../common/scheduled-work';
import { stopProcess } from '../../scripts/lib/worker-process';
import { spawnWorker } from '../helpers/worker-process';
import { testEnv } from '../setup/env';
import { uniqueSuffix } from './support';

const describeOrNull = (id: string) =>
  testEnv()
    .client.schedule.getHandle(id)
    .describe()
    .catch((err) => (err instanceof ScheduleNotFoundError ? null : Promise.reject(err)));

describe('the worker at start-up', () => {
  const ids = Object.values(SCHEDULE_IDS);
  after(async () => {
    // The deployment's schedules would fire on a queue nobody polls once this test is over: each goes, with any run
    // it started meanwhile.
    for (const id of ids) {
      const schedule = await describeOrNull(id);
      if (!schedule) continue;
      for (const action of schedule.info.runningActions) {
        await testEnv().client.workflow.getHandle(action.workflow.workflowId).terminate('test over');
      }
      await testEnv().client.schedule.getHandle(id).delete();
    }
  });

  it('creates the deployment schedules on its task queue when SCHEDULES is on, before it polls', async () => {
    for (const id of ids) assert.equal(await describeOrNull(id), null, `${id} does not exist before the worker starts`);
    const taskQueue = `schedules-at-start-${uniqueSuffix()}`;
    const child = await spawnWorker(taskQueue, { SCHEDULES: 'true', LAB_TIMEZONE: 'Europe/Berlin' });
    try {
      for (const id of ids) {
        const schedule = await describeOrNull(id);
        assert.ok(schedule, `${id} exists once the worker polls`);
        assert.equal(schedule.action.type, 'startWorkflow');
        assert.equal(schedule.action.type === 'startWorkflow' && schedule.action.taskQueue, taskQueue);
        assert.equal(schedule.memo?.[SCHEDULE_OWNER_MEMO], DEFAULT_SCHEDULE_OWNER);
      }
      const backup = await describeOrNull(SCHEDULE_IDS.backup);
      assert.equal(backup?.spec.timezone, 'Europe/Berlin', 'the backup runs at 02:00 lab time');
      assert.equal(backup?.action.type === 'startWorkflow' && backup.action.workflowType, 'backupWorkflow');
    } finally {
      await stopProcess(child);
    }
  });
});
