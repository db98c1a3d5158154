import { ScheduleAlreadyRunning, ScheduleOverlapPolicy, type Client, type ScheduleOptions } from '@temporalio/client';
import { workflowIds } from '../common/ids';
import type { Logger } from '../platform/logger';

/** The periodic work labflow runs, declared in one place; operators see, pause and trigger it in the Web UI. */
export function scheduleDefinitions(taskQueue: string): ScheduleOptions[] {
  return [
    {
      scheduleId: 'audit-verify-nightly',
      spec: { calendars: [{ hour: 3, minute: 15 }], timezone: 'UTC' },
      action: { type: 'startWorkflow', workflowType: 'auditVerifyWorkflow', workflowId: workflowIds.auditVerify(), taskQueue, args: [] },
      policies: { overlap: ScheduleOverlapPolicy.SKIP, catchupWindow: '6h' },
      memo: { description: 'Recomputes the audit trail hash chain and alerts admins when a link is broken' },
    },
  ];
}

/** Creates each schedule, or brings an existing one up to date with its definition. */
export async function ensureSchedules(client: Client, taskQueue: string, log: Logger): Promise<void> {
  for (const definition of scheduleDefinitions(taskQueue)) {
    try {
      await client.schedule.create(definition);
      log.info({ scheduleId: definition.scheduleId }, 'schedule created');
    } catch (err) {
      if (!(err instanceof ScheduleAlreadyRunning)) throw err;
      await client.schedule.getHandle(definition.scheduleId).update((previous) => ({
        ...previous,
        spec: definition.spec,
        action: definition.action,
        policies: { ...previous.policies, ...definition.policies },
      }));
      log.info({ scheduleId: definition.scheduleId }, 'schedule up to date');
    }
  }
}
