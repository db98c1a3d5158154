import type { Knex } from 'knex';
import type { AssigneeRef } from '../common/assignees';
import { appendDomainEvent } from './domain-events';
import type { Db } from './knex';

export interface NewTask {
  taskKey: string;
  workflowId: string;
  entityType: string;
  entityId: string;
  kind: string;
  title: string;
  assignee: AssigneeRef;
  dueAt?: string | null;
}

/** Opens a task in the inbox; opening the same task key again changes nothing (and announces nothing). */
export async function openTask(trx: Knex | Knex.Transaction, task: NewTask): Promise<void> {
  const assigneeUserId = task.assignee.kind === 'user' ? task.assignee.userId : null;
  const assigneeRole = task.assignee.kind === 'role' ? task.assignee.role : null;
  const opened = await trx('tasks')
    .insert({
      task_key: task.taskKey,
      workflow_id: task.workflowId,
      entity_type: task.entityType,
      entity_id: task.entityId,
      kind: task.kind,
      title: task.title,
      assignee_user_id: assigneeUserId,
      assignee_role: assigneeRole,
      due_at: task.dueAt ?? null,
    })
    .onConflict('task_key')
    .ignore()
    .returning('task_key');
  if (opened.length === 0) return;
  await appendDomainEvent(trx, {
    type: 'task.assigned',
    entityType: task.entityType,
    entityId: task.entityId,
    data: { taskKey: task.taskKey, kind: task.kind, entityType: task.entityType, entityId: task.entityId, assigneeUserId, assigneeRole, dueAt: task.dueAt ?? null },
  });
}

export type TaskEnd = 'done' | 'reassigned' | 'cancelled';

export async function closeTask(trx: Knex | Knex.Transaction, taskKey: string, state: TaskEnd, closedBy?: string | null) {
  return trx('tasks')
    .where({ task_key: taskKey, state: 'open' })
    .update({ state, closed_at: trx.fn.now(), closed_by: closedBy ?? null });
}

/** Closes every open task whose key starts with the prefix (a stage, a run). */
export async function closeTasksByPrefix(trx: Knex | Knex.Transaction, keyPrefix: string, state: TaskEnd) {
  return trx('tasks')
    .where('state', 'open')
    .andWhere('task_key', 'like', `${keyPrefix.replace(/[\\%_]/g, '\\$&')}%`)
    .update({ state, closed_at: trx.fn.now() });
}

export interface TaskFilter {
  userId?: string;
  roles?: string[];
  state?: string;
  entityType?: string;
  limit: number;
  offset: number;
}

export async function listTasks(db: Db, filter: TaskFilter) {
  const query = db('tasks as t')
    .leftJoin('users as u', 'u.id', 't.assignee_user_id')
    .select(
      't.id',
      't.kind',
      't.title',
      't.state',
      't.entity_type',
      't.entity_id',
      't.workflow_id',
      't.due_at',
      't.created_at',
      't.closed_at',
      'u.username as assignee_user',
      't.assignee_role',
    )
    .orderBy([
      { column: 't.due_at', order: 'asc', nulls: 'last' },
      { column: 't.created_at', order: 'asc' },
    ])
    .limit(filter.limit)
    .offset(filter.offset);
  if (filter.state) query.where('t.state', filter.state);
  if (filter.entityType) query.where('t.entity_type', filter.entityType);
  if (filter.userId) {
    query.andWhere((q) => {
      q.where('t.assignee_user_id', filter.userId!);
      if (filter.roles?.length) q.orWhereIn('t.assignee_role', filter.roles);
    });
  }
  return query;
}

/**
 * A deactivated user's open tasks in one run go to `to`: each is closed as reassigned and opened again for the new
 * holder under `keyOf(old key)`. Answers the keys handed over.
 */
export async function handOverTasks(
  trx: Knex.Transaction,
  p: { workflowId: string; userId: string; to: AssigneeRef; keyOf: (taskKey: string) => string },
): Promise<string[]> {
  const held = await trx('tasks').where({ workflow_id: p.workflowId, assignee_user_id: p.userId, state: 'open' }).forNoKeyUpdate();
  for (const task of held) {
    await closeTask(trx, task.task_key, 'reassigned');
    await openTask(trx, {
      taskKey: p.keyOf(task.task_key),
      workflowId: task.workflow_id,
      entityType: task.entity_type,
      entityId: task.entity_id,
      kind: task.kind,
      title: task.title,
      assignee: p.to,
      dueAt: task.due_at ? new Date(task.due_at).toISOString() : null,
    });
  }
  return held.map((t: { task_key: string }) => t.task_key);
}

/** Whether Postgres shows this user deactivated: the proof a userDeactivated signal carries. */
export async function userIsInactive(trx: Knex.Transaction, userId: string): Promise<boolean> {
  return Boolean(await trx('users').where({ id: userId, active: false }).first('id'));
}
