import assert from 'node:assert/strict';
import { Client, ScheduleNotFoundError, ScheduleOverlapPolicy } from '@temporalio/client';
import { DEFAULT_SCHEDULE_OWNER, SCHEDULE_IDS, SCHEDULE_OWNER_MEMO } from '../../common/scheduled-work';
import { dataConverterFor } from '../../platform/data-converter';
import { generatePayloadKeys, parsePayloadKeys } from '../../platform/payload-codec';
import { stopProcess } from '../../scripts/lib/worker-process';
import { UNDECODABLE_SCHEDULE_ACTION } from '../../workers/schedule-alerts';
import { makeUsers } from '../helpers/users';
import { waitFor } from '../helpers/wait';
import { spawnWorker } from '../helpers/worker-process';
import { testEnv } from '../setup/env';
import { uniqueSuffix } from './support';

/**
 * A second installation on the same namespace, whose key carries the same key ID as this one's current key but other
 * bytes: what two installations made on the same day with date-only key IDs had. Its schedules fail authentication
 * under this deployment's keys.
 */
function otherInstallation(): Client {
  const currentId = parsePayloadKeys(testEnv().payloadKeys).current.id;
  return new Client({
    connection: testEnv().client.connection,
    dataConverter: dataConverterFor(parsePayloadKeys(generatePayloadKeys(currentId)), { side: 'worker' }),
  });
}

describe('a schedule the worker cannot decode at start-up', () => {
  const foreignQueue = `other-installation-${uniqueSuffix()}`;
  const unlisted = `other-installation-report-${uniqueSuffix()}`;
  const ours = Object.values(SCHEDULE_IDS);
  let foreign: Client;
  before(() => {
    foreign = otherInstallation();
  });

  after(async () => {
    // The deployment's schedule IDs are shared by every test of the run: each goes, with any run it started.
    for (const id of [...ours, unlisted]) {
      const raw = await testEnv()
        .client.workflowService.describeSchedule({ namespace: 'default', scheduleId: id })
        .catch(() => null);
      if (!raw) continue;
      for (const running of raw.info?.runningWorkflows ?? []) {
        await testEnv().client.workflow.getHandle(running.workflowId!).terminate('test over').catch(() => undefined);
      }
      await testEnv().client.workflowService.deleteSchedule({ namespace: 'default', scheduleId: id });
    }
  });

  async function createForeign(scheduleId: string, workflowType: string): Promise<void> {
    await foreign.schedule.create({
      scheduleId,
      spec: { calendars: [{ hour: 2, minute: 0 }] },
      action: { type: 'startWorkflow', workflowType, workflowId: `${scheduleId}-run`, taskQueue: foreignQueue, args: [{ any: 'input' }] },
      policies: { overlap: ScheduleOverlapPolicy.SKIP },
      state: { paused: true, note: 'the other installation paused it' },
      memo: { [SCHEDULE_OWNER_MEMO]: DEFAULT_SCHEDULE_OWNER, description: 'made by another installation' },
    });
  }

  it('is reported to operators and left alone, and the worker starts, reconciles the rest and runs work', async function () {
    this.timeout(180_000);
    const users = await makeUsers({ ops: ['it_operator'] });
    for (const id of ours) {
      await testEnv()
        .client.schedule.getHandle(id)
        .describe()
        .then(
          () => assert.fail(`${id} exists before the test`),
          (err) => assert.ok(err instanceof ScheduleNotFoundError || /authentication|payload/.test(String(err)), String(err)),
        );
    }
    await createForeign(SCHEDULE_IDS.backup, 'backupWorkflow');
    await createForeign(unlisted, 'someoneElsesWorkflow');
    // This deployment's client cannot read it: the failure the worker meets.
    await assert.rejects(testEnv().client.schedule.getHandle(SCHEDULE_IDS.backup).describe(), /failed authentication/);

    const taskQueue = `undecodable-at-start-${uniqueSuffix()}`;
    const child = await spawnWorker(taskQueue, { SCHEDULES: 'true' });
    try {
      // Reported: one audit event per undecodable schedule, naming the key, and an in-app alert to IT.
      const events = await waitFor(async () => {
        const rows = await testEnv().db('audit_events').where({ action: UNDECODABLE_SCHEDULE_ACTION }).whereIn('entity_id', [SCHEDULE_IDS.backup, unlisted]);
        return rows.length === 2 ? rows : null;
      }, 'the undecodable-schedule audit events');
      for (const event of events) {
        const details = typeof event.details === 'string' ? JSON.parse(event.details) : event.details;
        assert.match(details.reason, /failed authentication/);
        assert.doesNotMatch(details.reason, /any|input/, 'the reason names the key, not payload content');
      }
      const ops = await testEnv().db('users').where({ username: users.ops.username }).first('id');
      const alerts = await testEnv().db('notifications').where({ user_id: ops.id, kind: UNDECODABLE_SCHEDULE_ACTION });
      assert.deepEqual(alerts.map((a) => /Schedule (\S+)/.exec(a.title)?.[1]).sort(), [SCHEDULE_IDS.backup, unlisted].sort());

      // Left alone: the other installation still reads both, unchanged, paused, on its own task queue.
      for (const id of [SCHEDULE_IDS.backup, unlisted]) {
        const kept = await foreign.schedule.getHandle(id).describe();
        assert.equal(kept.action.type === 'startWorkflow' && kept.action.taskQueue, foreignQueue, id);
        assert.equal(kept.state.paused, true, id);
        assert.equal(kept.state.note, 'the other installation paused it', id);
      }

      // The rest of the deployment's schedules are there, on this worker's queue, and the worker does its work.
      const audit = await testEnv().client.schedule.getHandle(SCHEDULE_IDS.auditVerify).describe();
      assert.equal(audit.action.type === 'startWorkflow' && audit.action.taskQueue, taskQueue);
      const canary = await testEnv().client.workflow.execute('healthCanaryWorkflow', {
        workflowId: `undecodable-canary-${uniqueSuffix()}`,
        taskQueue,
      });
      assert.match(String((canary as { completedAt: string }).completedAt), /^\d{4}-/);
      assert.equal(child.exitCode, null, 'the worker is still running');
      assert.equal(child.signalCode, null, 'the worker is still running');
    } finally {
      await stopProcess(child);
    }
  });
});
