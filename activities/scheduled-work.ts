import { readdir, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { log } from '@temporalio/activity';
import type { AssigneeRef } from '../common/assignees';
import { durationMs } from '../common/durations';
import {
  DEFAULT_ESCALATION,
  type CleanupCounts,
  type CleanupInput,
  type DigestInput,
  type OverdueRemindersInput,
} from '../common/scheduled-work';
import type { Knex } from 'knex';
import { appendAudit } from '../db/audit';
import { appendDomainEvent } from '../db/domain-events';
import { queueNotifications } from '../db/notifications';
import { resolveRecipients } from '../db/recipients';
import type { ActivityDeps } from './deps';
import { backupActivities } from './backups';
import { activityKey } from './keys';

const ACTOR = 'system:scheduler';

/** Local calendar date and hour of an instant in a zone. */
function localClock(at: Date, timeZone: string): { date: string; hour: number } {
  const parts = new Intl.DateTimeFormat('en-CA', {
    timeZone,
    year: 'numeric',
    month: '2-digit',
    day: '2-digit',
    hour: '2-digit',
    hourCycle: 'h23',
  }).formatToParts(at);
  const get = (type: string) => parts.find((p) => p.type === type)!.value;
  return { date: `${get('year')}-${get('month')}-${get('day')}`, hour: Number(get('hour')) };
}

function validZone(zone: string | null | undefined): string | null {
  if (!zone) return null;
  try {
    new Intl.DateTimeFormat('en', { timeZone: zone });
    return zone;
  } catch {
    return null;
  }
}

/** Scheduled work: the backup activities and those of reminders, digest, clean-up and the canary. */
export function scheduledWorkActivities(deps: ActivityDeps) {
  const { db, mailDomain, publicUrl } = deps;
  return {
    ...backupActivities(deps),
    /**
     * Reminds the assignee of every open, overdue task once per reminder period, and escalates a task to its
     * process's role once when it is overdue by the rule's duration. Recorded in task_reminders, so a repeated
     * run (a retry, a backfill, a manual trigger) in the same period sends nothing twice.
     */
    async sendOverdueReminders(input: OverdueRemindersInput): Promise<{ reminded: number; escalated: number; outboxIds: string[] }> {
      const asOf = input.asOf ? new Date(input.asOf) : new Date();
      const period = `p${Math.floor(asOf.getTime() / durationMs(input.every))}`;
      const rules = { ...DEFAULT_ESCALATION, ...input.escalation };
      const overdue = await db('tasks').where('state', 'open').where('due_at', '<', asOf).orderBy('due_at').select('*');
      let reminded = 0;
      let escalated = 0;
      const outboxIds: string[] = [];
      for (const task of overdue) {
        await db.transaction(async (trx) => {
          const assignee: AssigneeRef = task.assignee_user_id
            ? { kind: 'user', userId: task.assignee_user_id, username: '' }
            : { kind: 'role', role: task.assignee_role };
          const overdueMs = asOf.getTime() - new Date(task.due_at).getTime();
          const link = `${publicUrl}/tasks/${task.id}`;
          await publishOverdueOnce(trx, task);
          const fresh = await trx('task_reminders')
            .insert({ task_id: task.id, period, kind: 'reminder' })
            .onConflict(['task_id', 'kind', 'period'])
            .ignore()
            .returning('task_id');
          if (fresh.length) {
            reminded += 1;
            outboxIds.push(
              ...(await queueNotifications(
                trx,
                await resolveRecipients(trx, [assignee]),
                {
                  idempotencyKey: `task-reminder:${task.id}:${period}`,
                  kind: 'task.overdue',
                  title: `Overdue: ${task.title}`,
                  body: `"${task.title}" was due ${new Date(task.due_at).toISOString()}.`,
                  link,
                },
                mailDomain,
              )),
            );
          }
          const rule = rules[task.entity_type] ?? rules.default;
          if (rule && overdueMs >= durationMs(rule.after)) {
            const first = await trx('task_reminders')
              .insert({ task_id: task.id, period: 'once', kind: 'escalation' })
              .onConflict(['task_id', 'kind', 'period'])
              .ignore()
              .returning('task_id');
            if (first.length) {
              escalated += 1;
              outboxIds.push(
                ...(await queueNotifications(
                  trx,
                  await resolveRecipients(trx, [{ kind: 'role', role: rule.to as never }]),
                  {
                    idempotencyKey: `task-escalation:${task.id}`,
                    kind: 'task.escalated',
                    title: `Escalated: ${task.title}`,
                    body: `"${task.title}" (${task.entity_type} ${task.entity_id}) is overdue since ${new Date(task.due_at).toISOString()}.`,
                    link,
                  },
                  mailDomain,
                )),
              );
              await appendAudit(trx, {
                actor: ACTOR,
                action: 'task.escalated',
                entityType: task.entity_type,
                entityId: task.entity_id,
                details: { taskId: task.id, to: rule.to },
                idempotencyKey: `task-escalation:${task.id}`,
              });
            }
          }
        });
      }
      if (reminded || escalated) log.info('overdue reminders', { reminded, escalated, period });
      return { reminded, escalated, outboxIds };
    },

    /**
     * Each user whose local time (their zone, else the lab's) has reached the digest hour gets today's digest
     * once: open tasks, those due soon and those overdue, in-app and by email. Users with no open task get none.
     */
    async sendDailyDigests(input: DigestInput): Promise<{ sent: number; outboxIds: string[] }> {
      const asOf = input.asOf ? new Date(input.asOf) : new Date();
      const soon = new Date(asOf.getTime() + durationMs(input.dueSoon));
      const users = await db('users as u')
        .leftJoin('user_preferences as p', 'p.user_id', 'u.id')
        .where('u.active', true)
        .andWhere((q) => q.whereNull('p.digest').orWhere('p.digest', true))
        .select('u.id', 'u.username', 'u.roles', 'p.time_zone');
      let sent = 0;
      const outboxIds: string[] = [];
      for (const user of users) {
        const zone = validZone(user.time_zone) ?? input.labTimeZone;
        const local = localClock(asOf, zone);
        if (local.hour < input.hour) continue;
        const key = `digest:${local.date}`;
        if (await db('notifications').where({ idempotency_key: key, user_id: user.id }).first('id')) continue;
        const tasks = await db('tasks')
          .where('state', 'open')
          .andWhere((q) => {
            q.where('assignee_user_id', user.id);
            if (user.roles?.length) q.orWhereIn('assignee_role', user.roles);
          })
          .orderBy([{ column: 'due_at', order: 'asc', nulls: 'last' }])
          .select('id', 'title', 'due_at');
        if (tasks.length === 0) continue;
        const overdue = tasks.filter((t) => t.due_at && new Date(t.due_at) < asOf);
        const dueSoon = tasks.filter((t) => t.due_at && new Date(t.due_at) >= asOf && new Date(t.due_at) <= soon);
        const line = (t: { title: string; due_at: Date | null }) =>
          `- ${t.title}${t.due_at ? ` (due ${new Date(t.due_at).toISOString()})` : ''}`;
        const body = [
          `Open tasks: ${tasks.length}. Due soon: ${dueSoon.length}. Overdue: ${overdue.length}.`,
          ...(overdue.length ? ['', 'Overdue:', ...overdue.slice(0, 20).map(line)] : []),
          ...(dueSoon.length ? ['', 'Due soon:', ...dueSoon.slice(0, 20).map(line)] : []),
        ].join('\n');
        const ids = await db.transaction(async (trx) =>
          queueNotifications(
            trx,
            await trx('users').where({ id: user.id }).select('id', 'username', 'email', 'printed_name'),
            {
              idempotencyKey: key,
              kind: 'digest',
              title: `Your labflow digest for ${local.date}`,
              body,
              link: `${publicUrl}/tasks?mine=1`,
            },
            mailDomain,
          ),
        );
        outboxIds.push(...ids);
        sent += 1;
      }
      return { sent, outboxIds };
    },

    /** Deletes what has outlived its use and records the counts in the audit trail. */
    async runCleanup(input: CleanupInput): Promise<CleanupCounts> {
      const asOf = input.asOf ? new Date(input.asOf) : new Date();
      const before = (d: string) => new Date(asOf.getTime() - durationMs(d));
      const counts = await db.transaction(async (trx) => {
        const revokedKeys = await trx('api_keys').whereNotNull('revoked_at').where('revoked_at', '<', before(input.keepRevokedKeys)).del();
        const readNotifications = await trx('notifications')
          .whereNotNull('read_at')
          .where('read_at', '<', before(input.keepReadNotifications))
          .del();
        const sentEmails = await trx('email_outbox').where('state', 'sent').where('sent_at', '<', before(input.keepSentEmails)).del();
        return { revokedKeys, readNotifications, sentEmails };
      });
      let outboxFiles = 0;
      if (input.outboxDir) {
        const cutoff = before(input.keepOutboxFiles).getTime();
        const names = await readdir(input.outboxDir).catch(() => [] as string[]);
        for (const name of names.filter((n) => n.endsWith('.eml'))) {
          const path = join(input.outboxDir, name);
          if ((await stat(path)).mtimeMs < cutoff) {
            await rm(path, { force: true });
            outboxFiles += 1;
          }
        }
      }
      const all = { ...counts, outboxFiles };
      await appendAudit(db, {
        actor: ACTOR,
        action: 'maintenance.cleanup',
        entityType: 'maintenance',
        entityId: 'cleanup',
        details: all,
        idempotencyKey: activityKey(),
      });
      return all;
    },

    /** The canary's touch of Postgres: proves that Temporal handed a worker a task that reached the database. */
    async canaryTouch(input: { workflowId: string; startedAt: string }): Promise<{ completedAt: string }> {
      const row = await db.raw(
        `insert into health_canary (id, workflow_id, started_at, completed_at) values (1, ?, ?, now())
         on conflict (id) do update set workflow_id = excluded.workflow_id, started_at = excluded.started_at, completed_at = now()
         returning completed_at`,
        [input.workflowId, input.startedAt],
      );
      return { completedAt: new Date(row.rows[0].completed_at).toISOString() };
    },
  };
}

/** The first time a task is found overdue, other systems hear of it (`task.overdue`), once however often it is found. */
interface TaskRow {
  id: string;
  task_key: string;
  kind: string;
  entity_type: string;
  entity_id: string;
  assignee_user_id: string | null;
  assignee_role: string | null;
  due_at: Date | string;
}

async function publishOverdueOnce(trx: Knex.Transaction, task: TaskRow): Promise<void> {
  const first = await trx('task_reminders')
    .insert({ task_id: task.id, period: 'once', kind: 'overdue' })
    .onConflict(['task_id', 'kind', 'period'])
    .ignore()
    .returning('task_id');
  if (!first.length) return;
  await appendDomainEvent(trx, {
    type: 'task.overdue',
    entityType: task.entity_type,
    entityId: task.entity_id,
    data: {
      taskKey: task.task_key,
      kind: task.kind,
      entityType: task.entity_type,
      entityId: task.entity_id,
      assigneeUserId: task.assignee_user_id,
      assigneeRole: task.assignee_role,
      dueAt: new Date(task.due_at).toISOString(),
    },
  });
}
