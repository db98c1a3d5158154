import type { ScheduleDescription } from '@temporalio/client';
import { findBackup, listBackups, recentRestoreDrills, savePreferences, setLegalHold } from '../../db/scheduled-work';
import type { ApiDeps } from '../deps';
import { problems } from '../problem';
import { route, type RouteSpec } from '../route';
import * as R from '../schemas/responses';
import { describeSchedule, listSchedules, operateSchedule, startAdhocBackup } from '../services/scheduled-work';
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

export function scheduledWorkRoutes(deps: ApiDeps): RouteSpec[] {
  const { db } = deps;

  /** Pausing and unpausing are the same operation but for the verb: audited, with the reason as the schedule's note. */
  const pauseRoute = (verb: 'pause' | 'unpause') =>
    route({
      method: 'post',
      path: `/schedules/:scheduleId/${verb}`,
      response: R.schedule,
      summary: `${verb[0].toUpperCase()}${verb.slice(1)} a schedule (reason recorded in the audit trail and as the schedule note)`,
      tag: 'operations',
      roles: OPERATORS,
      params: scheduleParams,
      body: reasonBody,
      handler: async ({ params, body, actor, ctx }) => {
        await operateSchedule(deps, actor, params.scheduleId, { verb, reason: body.reason });
        ctx.body = scheduleView(await describeSchedule(deps, params.scheduleId));
      },
    });

  return [
    route({
      method: 'get',
      path: '/schedules',
      response: R.scheduleList,
      summary: 'Every schedule with its spec, next runs and recent runs',
      tag: 'operations',
      roles: READERS,
      handler: async ({ ctx }) => {
        ctx.body = { schedules: (await listSchedules(deps)).map(scheduleView) };
      },
    }),
    route({
      method: 'get',
      path: '/schedules/:scheduleId',
      response: R.schedule,
      summary: 'One schedule with its spec, next runs and recent runs',
      tag: 'operations',
      roles: READERS,
      params: scheduleParams,
      handler: async ({ params, ctx }) => {
        ctx.body = scheduleView(await describeSchedule(deps, params.scheduleId));
      },
    }),
    pauseRoute('pause'),
    pauseRoute('unpause'),
    route({
      method: 'post',
      path: '/schedules/:scheduleId/trigger',
      response: { 202: R.triggered },
      summary: "Run a schedule's action now (overlap policy: the schedule's, unless given)",
      tag: 'operations',
      roles: OPERATORS,
      params: scheduleParams,
      body: triggerBody,
      handler: async ({ params, body, actor, ctx }) => {
        await operateSchedule(deps, actor, params.scheduleId, { verb: 'trigger', reason: body.reason, overlap: body.overlap });
        ctx.status = 202;
        ctx.body = { scheduleId: params.scheduleId, status: 'triggered' };
      },
    }),
    route({
      method: 'post',
      path: '/schedules/:scheduleId/backfill',
      response: { 202: R.backfillRequested },
      summary: 'Take the actions a schedule would have taken in a past window',
      tag: 'operations',
      roles: OPERATORS,
      params: scheduleParams,
      body: backfillBody,
      handler: async ({ params, body, actor, ctx }) => {
        await operateSchedule(deps, actor, params.scheduleId, {
          verb: 'backfill',
          reason: body.reason,
          start: body.start,
          end: body.end,
          overlap: body.overlap,
        });
        ctx.status = 202;
        ctx.body = { scheduleId: params.scheduleId, status: 'backfill_requested', start: body.start, end: body.end };
      },
    }),
    route({
      method: 'post',
      path: '/backups',
      response: { 202: R.backupStarted }, problems: [409],
      summary: "An ad-hoc backup now, with the nightly schedule's settings → 202 + Location",
      tag: 'backups',
      roles: OPERATORS,
      handler: async ({ actor, ctx }) => {
        const workflowId = await startAdhocBackup(deps, actor);
        ctx.status = 202;
        ctx.set('Location', `/api/v1/workflows/${encodeURIComponent(workflowId)}`);
        ctx.body = { workflowId, status: 'started' };
      },
    }),
    route({
      method: 'get',
      path: '/backups',
      response: R.backupList,
      summary: 'Backups, newest first: sizes, hashes, versions, locations, tier, verification',
      tag: 'backups',
      roles: READERS,
      query: backupListQuery,
      handler: async ({ query, ctx }) => {
        const [backups, drills] = await Promise.all([listBackups(db, query), recentRestoreDrills(db, 5)]);
        ctx.body = {
          backups: backups.map(backupView),
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
      response: R.backup,
      summary: 'One backup',
      tag: 'backups',
      roles: READERS,
      params: backupParams,
      handler: async ({ params, ctx }) => {
        const row = await findBackup(db, params.backupId);
        if (!row) throw problems.notFound(`backup ${params.backupId}`);
        ctx.body = backupView(row);
      },
    }),
    route({
      method: 'post',
      path: '/backups/:backupId/legal-hold',
      response: R.backup, problems: [409],
      summary: 'Set or release a legal hold: a held backup is exempt from retention',
      tag: 'backups',
      roles: ['it_operator', 'qa_manager'],
      params: backupParams,
      body: legalHoldBody,
      handler: async ({ params, body, actor, ctx }) => {
        const outcome = await setLegalHold(db, actor, params.backupId, body);
        if ('notFound' in outcome) throw problems.notFound(`backup ${params.backupId}`);
        if ('notVerified' in outcome) throw problems.conflict('backup-not-verified', `backup ${params.backupId} is ${outcome.notVerified}`);
        const row = outcome.backup;
        ctx.body = backupView(row);
      },
    }),
    route({
      method: 'put',
      path: '/me/preferences',
      response: R.preferences,
      summary: "My time zone (for the daily digest; default the lab's) and whether I get the digest",
      tag: 'identity',
      roles: 'any',
      body: preferencesBody,
      handler: async ({ body, actor, ctx }) => {
        const changes = {
          ...(body.timeZone !== undefined ? { time_zone: body.timeZone } : {}),
          ...(body.digest !== undefined ? { digest: body.digest } : {}),
        };
        ctx.body = await savePreferences(db, actor.userId, changes);
      },
    }),
  ];
}
