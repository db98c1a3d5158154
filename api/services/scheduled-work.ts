import { ScheduleNotFoundError, ScheduleOverlapPolicy, type ScheduleDescription } from '@temporalio/client';
import { WorkflowExecutionAlreadyStartedError } from '@temporalio/common';
import type { Actor } from '../../common/roles';
import { SCHEDULE_IDS, type BackupInput } from '../../common/scheduled-work';
import { appendAudit } from '../../db/audit';
import { backupRunning } from '../../db/scheduled-work';
import type { ApiDeps } from '../deps';
import { problems } from '../problem';

type Deps = Pick<ApiDeps, 'db' | 'temporal'> & { config?: Pick<ApiDeps['config'], 'backfillMaxWindowMs'> };

/** A schedule as Temporal describes it; 404 when there is none by that ID. */
export function describeSchedule({ temporal }: Deps, scheduleId: string): Promise<ScheduleDescription> {
  return temporal.schedule
    .getHandle(scheduleId)
    .describe()
    .catch((err) => {
      throw err instanceof ScheduleNotFoundError ? problems.notFound(`schedule ${scheduleId}`) : err;
    });
}

/** Every schedule of the namespace, by ID; one that vanishes while listed is left out. */
export async function listSchedules({ temporal }: Deps): Promise<ScheduleDescription[]> {
  const ids: string[] = [];
  for await (const summary of temporal.schedule.list()) ids.push(summary.scheduleId);
  const described = await Promise.all(
    ids.sort().map((id) =>
      temporal.schedule
        .getHandle(id)
        .describe()
        .catch(() => null),
    ),
  );
  return described.filter((d): d is ScheduleDescription => d !== null);
}

export const OVERLAP: Record<string, ScheduleOverlapPolicy> = {
  skip: ScheduleOverlapPolicy.SKIP,
  buffer_one: ScheduleOverlapPolicy.BUFFER_ONE,
  buffer_all: ScheduleOverlapPolicy.BUFFER_ALL,
  cancel_other: ScheduleOverlapPolicy.CANCEL_OTHER,
  terminate_other: ScheduleOverlapPolicy.TERMINATE_OTHER,
  allow_all: ScheduleOverlapPolicy.ALLOW_ALL,
};
type OverlapName = keyof typeof OVERLAP;

/**
 * Overlap policies by their API names; a trigger without one follows the schedule's, a backfill skips an action
 * while the one before it still runs (a long window must not start its runs all at once).
 */
export type ScheduleOperation =
  | { verb: 'pause'; reason: string }
  | { verb: 'unpause'; reason: string }
  | { verb: 'trigger'; reason: string; overlap?: OverlapName }
  | { verb: 'backfill'; reason: string; start: string; end: string; overlap?: OverlapName };

const AUDIT_ACTION = {
  pause: 'schedule.paused',
  unpause: 'schedule.unpaused',
  trigger: 'schedule.triggered',
  backfill: 'schedule.backfilled',
};

/** An operator's action on a schedule: the schedule must exist, the action is audited, then taken. */
export async function operateSchedule(deps: Deps, actor: Actor, scheduleId: string, op: ScheduleOperation): Promise<void> {
  const maxWindowMs = deps.config?.backfillMaxWindowMs;
  if (op.verb === 'backfill' && maxWindowMs !== undefined && Date.parse(op.end) - Date.parse(op.start) > maxWindowMs) {
    throw problems.unprocessable(
      'backfill-window-too-long',
      `a backfill covers at most ${maxWindowMs / 3_600_000} hours (SCHEDULE_BACKFILL_MAX_WINDOW); split the window`,
      { maxWindowMs },
    );
  }
  await describeSchedule(deps, scheduleId);
  const details =
    op.verb === 'trigger'
      ? { reason: op.reason, overlap: op.overlap ?? null }
      : op.verb === 'backfill'
        ? { reason: op.reason, start: op.start, end: op.end, overlap: op.overlap ?? 'skip' }
        : { reason: op.reason };
  await appendAudit(deps.db, {
    actorId: actor.userId,
    actor: actor.username,
    action: AUDIT_ACTION[op.verb],
    entityType: 'schedule',
    entityId: scheduleId,
    details,
  });
  const handle = deps.temporal.schedule.getHandle(scheduleId);
  switch (op.verb) {
    case 'pause':
      return handle.pause(`paused by ${actor.username}: ${op.reason}`);
    case 'unpause':
      return handle.unpause(`unpaused by ${actor.username}: ${op.reason}`);
    case 'trigger':
      return handle.trigger(op.overlap ? OVERLAP[op.overlap] : undefined);
    case 'backfill':
      return handle.backfill({
        start: new Date(op.start),
        end: new Date(op.end),
        overlap: op.overlap ? OVERLAP[op.overlap] : ScheduleOverlapPolicy.SKIP,
      });
  }
}

/** An ad-hoc backup now, with the nightly schedule's settings; the request is audited. */
export async function startAdhocBackup(deps: Deps, actor: Actor): Promise<string> {
  const { db, temporal } = deps;
  if (await backupRunning(db)) throw problems.conflict('backup-running', 'a backup is running; try again when it has finished');
  const nightly = await temporal.schedule
    .getHandle(SCHEDULE_IDS.backup)
    .describe()
    .catch((err) => {
      throw err instanceof ScheduleNotFoundError
        ? problems.unavailable(
            `the ${SCHEDULE_IDS.backup} schedule is not set up (start the worker with SCHEDULES=true or run npm run schedules)`,
          )
        : err;
    });
  const action = nightly.action as { workflowType: string; taskQueue: string; args?: unknown[] };
  const [scheduled] = (action.args ?? []) as BackupInput[];
  const stamp = new Date().toISOString().replace(/[:.]/g, '-');
  const workflowId = `backup:adhoc-${stamp}`;
  const input: BackupInput = { settings: scheduled.settings, trigger: 'manual', requestedBy: actor.username };
  await temporal.workflow.start('backupWorkflow', { workflowId, taskQueue: action.taskQueue, args: [input] }).catch((err) => {
    throw err instanceof WorkflowExecutionAlreadyStartedError
      ? problems.conflict('backup-running', `${workflowId} is already running`)
      : err;
  });
  await appendAudit(db, {
    actorId: actor.userId,
    actor: actor.username,
    action: 'backup.requested',
    entityType: 'workflow',
    entityId: workflowId,
    details: {},
  });
  return workflowId;
}
