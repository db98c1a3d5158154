import { ScheduleNotFoundError, ScheduleOverlapPolicy, type ScheduleDescription } from '@temporalio/client';
import { WorkflowExecutionAlreadyStartedError } from '@temporalio/common';
import { SCHEDULE_IDS, type BackupInput } from '../../common/scheduled-work';
import { appendAudit } from '../../db/audit';
import type { ApiDeps } from '../deps';
import { problems } from '../problem';
import { route, type RouteSpec } from '../route';
import {
  backfillBody,
  backupListQuery,
  backupParams,
  legalHoldBody,
  preferencesBody,
  reasonBody,
  scheduleParams,
  triggerBody,
} from '../schemas/scheduled-work';

const OPERATORS = ['it_operator'] as const;
const READERS = ['it_operator', 'qa_manager'] as const;

const OVERLAP: Record<string, ScheduleOverlapPolicy> = {
  skip: ScheduleOverlapPolicy.SKIP,
  buffer_one: ScheduleOverlapPolicy.BUFFER_ONE,
  buffer_all: ScheduleOverlapPolicy.BUFFER_ALL,
  cancel_other: ScheduleOverlapPolicy.CANCEL_OTHER,
  terminate_other: ScheduleOverlapPolicy.TERMINATE_OTHER,
  allow_all: ScheduleOverlapPolicy.ALLOW_ALL,
};

function scheduleView(d: ScheduleDescription) {
  const action = d.action as { workflowType?: string; workflowId?: string; taskQueue?: string };
  return {
    scheduleId: d.scheduleId,
    description: (d.memo?.description as string | undefined) ?? null,
    managedBy: (d.memo?.managedBy as string | undefined) ?? null,
    paused: d.state.paused,
    note: d.state.note ?? null,
    spec: {
      timezone: d.spec.timezone ?? 'UTC',
      calendars: d.spec.calendars ?? [],
      intervals: (d.spec.intervals ?? []).map((i) => ({ every: i.every, offset: i.offset ?? 0 })),
    },
    workflowType: action.workflowType ?? null,
    workflowId: action.workflowId ?? null,
    taskQueue: action.taskQueue ?? null,
    overlap: d.policies.overlap,
    catchupWindowMs: d.policies.catchupWindow,
    nextActionTimes: d.info.nextActionTimes,
    recentActions: d.info.recentActions.map((a) => ({
      scheduledAt: a.scheduledAt,
      takenAt: a.takenAt,
      workflowId: a.action.workflow.workflowId,
      runId: a.action.workflow.firstExecutionRunId,
    })),
    runningActions: d.info.runningActions.map((a) => a.workflow.workflowId),
    numActionsTaken: d.info.numActionsTaken,
    numActionsSkippedOverlap: d.info.numActionsSkippedOverlap,
  };
}

function backupView(row: Record<string, unknown>) {
  return {
    id: row.id,
    state: row.state,
    trigger: row.trigger,
    requestedBy: row.requested_by,
    workflowId: row.workflow_id,
    takenAt: row.taken_at,
    startedAt: row.started_at,
    finishedAt: row.finished_at,
    durationMs: row.duration_ms,
    database: row.database_name,
    serverVersion: row.server_version,
    pgDumpVersion: row.pg_dump_version,
    compression: row.compression,
    dump: { path: row.dump_path, bytes: row.dump_bytes, sha256: row.dump_sha256, tocEntries: row.toc_entries, sizeRatio: row.size_ratio },
    globals: { path: row.globals_path, bytes: row.globals_bytes, sha256: row.globals_sha256 },
    encrypted: row.encrypted,
    keyFingerprint: row.key_fingerprint,
    storedSha256: row.stored_sha256,
    offsite: { path: row.offsite_path, globalsPath: row.offsite_globals_path, verifiedAt: row.offsite_verified_at },
    verifiedAt: row.verified_at,
    tier: row.tier,
    legalHold: row.legal_hold,
    expiredAt: row.expired_at,
    failure: row.failure,
  };
}

export function scheduledWorkRoutes({ db, temporal }: ApiDeps): RouteSpec[] {
  const describe = (scheduleId: string) =>
    temporal.schedule
      .getHandle(scheduleId)
      .describe()
      .catch((err) => {
        throw err instanceof ScheduleNotFoundError ? problems.notFound(`schedule ${scheduleId}`) : err;
      });
  const audited = (actor: { userId: string; username: string }, action: string, scheduleId: string, details: Record<string, unknown>) =>
    appendAudit(db, { actorId: actor.userId, actor: actor.username, action, entityType: 'schedule', entityId: scheduleId, details });

  /** Pausing and unpausing are the same operation but for the verb: audited, with the reason as the schedule's note. */
  const pauseRoute = (verb: 'pause' | 'unpause') =>
    route({
      method: 'post',
      path: `/schedules/:scheduleId/${verb}`,
      summary: `${verb[0].toUpperCase()}${verb.slice(1)} a schedule (reason recorded in the audit trail and as the schedule note)`,
      tag: 'operations',
      roles: OPERATORS,
      params: scheduleParams,
      body: reasonBody,
      handler: async ({ params, body, actor, ctx }) => {
        await describe(params.scheduleId);
        await audited(actor, `schedule.${verb}d`, params.scheduleId, { reason: body.reason });
        await temporal.schedule.getHandle(params.scheduleId)[verb](`${verb}d by ${actor.username}: ${body.reason}`);
        ctx.body = scheduleView(await describe(params.scheduleId));
      },
    });

  return [
    route({
      method: 'get',
      path: '/schedules',
      summary: 'Every schedule with its spec, next runs and recent runs',
      tag: 'operations',
      roles: READERS,
      handler: async ({ ctx }) => {
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
        ctx.body = { schedules: described.filter((d): d is ScheduleDescription => d !== null).map(scheduleView) };
      },
    }),
    route({
      method: 'get',
      path: '/schedules/:scheduleId',
      summary: 'One schedule with its spec, next runs and recent runs',
      tag: 'operations',
      roles: READERS,
      params: scheduleParams,
      handler: async ({ params, ctx }) => {
        ctx.body = scheduleView(await describe(params.scheduleId));
      },
    }),
    pauseRoute('pause'),
    pauseRoute('unpause'),
    route({
      method: 'post',
      path: '/schedules/:scheduleId/trigger',
      summary: "Run a schedule's action now (overlap policy: the schedule's, unless given)",
      tag: 'operations',
      roles: OPERATORS,
      params: scheduleParams,
      body: triggerBody,
      handler: async ({ params, body, actor, ctx }) => {
        await describe(params.scheduleId);
        await audited(actor, 'schedule.triggered', params.scheduleId, { reason: body.reason, overlap: body.overlap ?? null });
        await temporal.schedule.getHandle(params.scheduleId).trigger(body.overlap ? OVERLAP[body.overlap] : undefined);
        ctx.status = 202;
        ctx.body = { scheduleId: params.scheduleId, status: 'triggered' };
      },
    }),
    route({
      method: 'post',
      path: '/schedules/:scheduleId/backfill',
      summary: 'Take the actions a schedule would have taken in a past window',
      tag: 'operations',
      roles: OPERATORS,
      params: scheduleParams,
      body: backfillBody,
      handler: async ({ params, body, actor, ctx }) => {
        await describe(params.scheduleId);
        await audited(actor, 'schedule.backfilled', params.scheduleId, { reason: body.reason, start: body.start, end: body.end });
        await temporal.schedule.getHandle(params.scheduleId).backfill({
          start: new Date(body.start),
          end: new Date(body.end),
          overlap: body.overlap ? OVERLAP[body.overlap] : ScheduleOverlapPolicy.ALLOW_ALL,
        });
        ctx.status = 202;
        ctx.body = { scheduleId: params.scheduleId, status: 'backfill_requested', start: body.start, end: body.end };
      },
    }),
    route({
      method: 'post',
      path: '/backups',
      summary: "An ad-hoc backup now, with the nightly schedule's settings → 202 + Location",
      tag: 'backups',
      roles: OPERATORS,
      handler: async ({ actor, ctx }) => {
        if (await db('backups').where({ state: 'running' }).first('id'))
          throw problems.conflict('backup-running', 'a backup is running; try again when it has finished');
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
        ctx.status = 202;
        ctx.set('Location', `/api/v1/workflows/${encodeURIComponent(workflowId)}`);
        ctx.body = { workflowId, status: 'started' };
      },
    }),
    route({
      method: 'get',
      path: '/backups',
      summary: 'Backups, newest first: sizes, hashes, versions, locations, tier, verification',
      tag: 'backups',
      roles: READERS,
      query: backupListQuery,
      handler: async ({ query, ctx }) => {
        const q = db('backups').orderBy('taken_at', 'desc').limit(query.limit).offset(query.offset);
        if (query.state) q.where('state', query.state);
        const drills = await db('restore_drills').orderBy('started_at', 'desc').limit(5);
        ctx.body = {
          backups: (await q).map(backupView),
          restoreDrills: drills.map((d) => ({
            id: d.id,
            backupId: d.backup_id,
            startedAt: d.started_at,
            restoreMs: d.restore_ms,
            rowCounts: d.row_counts,
            auditChainOk: d.audit_chain_ok,
            ok: d.ok,
            failure: d.failure,
          })),
        };
      },
    }),
    route({
      method: 'get',
      path: '/backups/:backupId',
      summary: 'One backup',
      tag: 'backups',
      roles: READERS,
      params: backupParams,
      handler: async ({ params, ctx }) => {
        const row = await db('backups').where({ id: params.backupId }).first();
        if (!row) throw problems.notFound(`backup ${params.backupId}`);
        ctx.body = backupView(row);
      },
    }),
    route({
      method: 'post',
      path: '/backups/:backupId/legal-hold',
      summary: 'Set or release a legal hold: a held backup is exempt from retention',
      tag: 'backups',
      roles: ['it_operator', 'qa_manager'],
      params: backupParams,
      body: legalHoldBody,
      handler: async ({ params, body, actor, ctx }) => {
        const row = await db.transaction(async (trx) => {
          const found = await trx('backups').where({ id: params.backupId }).forUpdate().first();
          if (!found) throw problems.notFound(`backup ${params.backupId}`);
          if (body.hold && found.state !== 'verified')
            throw problems.conflict('backup-not-verified', `backup ${params.backupId} is ${found.state}`);
          await trx('backups').where({ id: params.backupId }).update({ legal_hold: body.hold });
          await appendAudit(trx, {
            actorId: actor.userId,
            actor: actor.username,
            action: body.hold ? 'backup.legal_hold_set' : 'backup.legal_hold_released',
            entityType: 'backup',
            entityId: params.backupId,
            details: { reason: body.reason },
          });
          return trx('backups').where({ id: params.backupId }).first();
        });
        ctx.body = backupView(row);
      },
    }),
    route({
      method: 'put',
      path: '/me/preferences',
      summary: "My time zone (for the daily digest; default the lab's) and whether I get the digest",
      tag: 'identity',
      roles: 'any',
      body: preferencesBody,
      handler: async ({ body, actor, ctx }) => {
        const changes = {
          ...(body.timeZone !== undefined ? { time_zone: body.timeZone } : {}),
          ...(body.digest !== undefined ? { digest: body.digest } : {}),
        };
        await db('user_preferences')
          .insert({ user_id: actor.userId, ...changes })
          .onConflict('user_id')
          .merge({ ...changes, updated_at: db.fn.now() });
        const row = await db('user_preferences').where({ user_id: actor.userId }).first();
        ctx.body = { timeZone: row.time_zone, digest: row.digest };
      },
    }),
  ];
}
