import type { Knex } from 'knex';
import type { Role } from '../common/roles';
import type { TrainingRequirementInput } from '../common/training';
import { appendAudit } from './audit';
import { afterRow, type Cursor } from './keyset';
import type { Db } from './knex';

/** Training records: requirements, assignments and the governing documents of gated activities. */

export interface RequirementView {
  document: string;
  roles: Role[];
  due: string;
  reminderBefore: string;
  retrainOnRevision: boolean;
  grace: string;
  active: boolean;
  setInVersion: number;
}

export async function findRequirement(db: Db, documentId: string): Promise<RequirementView | undefined> {
  const row = await db('training_requirements as r').join('documents as d', 'd.id', 'r.document_id').where('r.document_id', documentId).first('r.*', 'd.number');
  return (
    row && {
      document: row.number,
      roles: row.roles,
      due: row.due,
      reminderBefore: row.reminder_before,
      retrainOnRevision: row.retrain_on_revision,
      grace: row.grace,
      active: row.active,
      setInVersion: row.set_in_version,
    }
  );
}

/** Document control's proposal at submission: kept with the version and applied when the version becomes effective. */
export async function proposeTraining(
  trx: Knex.Transaction,
  versionId: string,
  proposal: { requirement?: TrainingRequirementInput; impact?: string },
): Promise<void> {
  if (!proposal.requirement && !proposal.impact) return;
  await trx('document_versions')
    .where({ id: versionId })
    .update({
      training_requirement: proposal.requirement ? JSON.stringify(proposal.requirement) : null,
      training_impact: proposal.impact ?? null,
    });
}

/** A PostgreSQL array literal of plain values (UUIDs, role names): knex would spread a JS array into a list. */
export const pgArray = (values: readonly string[]) => `{${values.join(',')}}`;

const page = <T>(rows: T[], limit: number) => ({ items: rows.slice(0, limit), more: rows.length > limit });

export interface AssignmentRow {
  id: string;
  workflowId: string;
  username: string;
  document: string;
  version: number;
  state: string;
  dueAt: Date;
  assignedAt: Date;
  closedAt: Date | null;
  endedBecause: string | null;
  overdue: boolean;
}

const ASSIGNMENT_COLUMNS = [
  'a.id',
  'a.workflow_id as workflowId',
  'u.username',
  'a.document_number as document',
  'a.version',
  'a.state',
  'a.due_at as dueAt',
  'a.assigned_at as assignedAt',
  'a.closed_at as closedAt',
  'a.ended_because as endedBecause',
] as const;

/** A person's assignments, soonest due first (keyset on due date and ID); open ones unless `all`. */
export async function listMyTraining(db: Db, userId: string, q: { all: boolean; limit: number; cursor?: Cursor }) {
  const rows = await db('training_assignments as a')
    .join('users as u', 'u.id', 'a.user_id')
    .where('a.user_id', userId)
    .modify((b) => {
      if (!q.all) b.where('a.state', 'assigned');
      if (q.cursor) b.whereRaw(afterRow(['a.due_at', 'a.id'], false, 'training_assignments', 'a'), [q.cursor.id]);
    })
    .orderBy([{ column: 'a.due_at' }, { column: 'a.id' }])
    .limit(q.limit + 1)
    .select([...ASSIGNMENT_COLUMNS, db.raw(`a.state = 'assigned' and a.due_at < now() as overdue`)]);
  return page(rows as AssignmentRow[], q.limit);
}

export async function findAssignment(db: Db, workflowId: string): Promise<(AssignmentRow & { userId: string }) | undefined> {
  return db('training_assignments as a')
    .join('users as u', 'u.id', 'a.user_id')
    .where('a.workflow_id', workflowId)
    .first([...ASSIGNMENT_COLUMNS, 'a.user_id as userId', db.raw(`a.state = 'assigned' and a.due_at < now() as overdue`)]);
}

/**
 * Per person who holds a role the requirement names (or has an assignment on the document): their standing on the
 * effective version: the assignment on it, and the latest version they signed. Keyset on username.
 */
export async function documentMatrix(db: Db, documentId: string, q: { limit: number; cursor?: Cursor }) {
  const rows = await db.raw(
    `with eff as (select id, version from document_versions where document_id = :doc and state = 'effective'),
          req as (select roles from training_requirements where document_id = :doc)
     select u.id, u.username, u.roles, u.active,
            (select version from eff) as "effectiveVersion",
            a.state as "assignmentState", a.due_at as "dueAt", a.closed_at as "closedAt",
            (select max(c.version) from training_assignments c where c.user_id = u.id and c.document_id = :doc and c.state = 'completed') as "lastSigned"
       from users u
       left join training_assignments a on a.user_id = u.id and a.version_id = (select id from eff)
      where ((u.active and u.roles && coalesce((select roles from req), '{}'::text[]))
             or exists (select 1 from training_assignments x where x.user_id = u.id and x.document_id = :doc))
        ${q.cursor ? `and ${afterRow(['u.username', 'u.id'], false, 'users', 'u').replace('?', ':cursor')}` : ''}
      order by u.username, u.id
      limit :limit`,
    { doc: documentId, limit: q.limit + 1, ...(q.cursor ? { cursor: q.cursor.id } : {}) },
  );
  return page(rows.rows as { id: string; username: string }[], q.limit);
}

/**
 * Per active person holding the role: every document whose active requirement names it, with the effective
 * version and their standing on it. Keyset on username.
 */
export async function roleMatrix(db: Db, role: Role, q: { limit: number; cursor?: Cursor }) {
  const users: { id: string; username: string }[] = await db('users as u')
    .where('u.active', true)
    .whereRaw('? = any(u.roles)', [role])
    .modify((b) => {
      if (q.cursor) b.whereRaw(afterRow(['u.username', 'u.id'], false, 'users', 'u'), [q.cursor.id]);
    })
    .orderBy([{ column: 'u.username' }, { column: 'u.id' }])
    .limit(q.limit + 1)
    .select('u.id', 'u.username');
  const shown = page(users, q.limit);
  if (!shown.items.length) return { items: [], more: false };
  const standing = await db.raw(
    `select p.user_id, d.number as document, v.version as "effectiveVersion", a.state as "assignmentState", a.due_at as "dueAt",
            (select max(c.version) from training_assignments c where c.user_id = p.user_id and c.document_id = d.id and c.state = 'completed') as "lastSigned"
       from training_requirements r
       join documents d on d.id = r.document_id
       join document_versions v on v.document_id = d.id and v.state = 'effective'
       cross join unnest(?::uuid[]) as p(user_id)
       left join training_assignments a on a.user_id = p.user_id and a.version_id = v.id
      where r.active and ? = any(r.roles)
      order by d.number`,
    [pgArray(shown.items.map((u) => u.id)), role],
  );
  const byUser = new Map<string, unknown[]>();
  for (const row of standing.rows as { user_id: string }[]) {
    const { user_id: userId, ...rest } = row;
    byUser.set(userId, [...(byUser.get(userId) ?? []), rest]);
  }
  return { items: shown.items.map((u) => ({ ...u, documents: byUser.get(u.id) ?? [] })), more: shown.more };
}

/** The controlled documents that govern an activity (document numbers), in number order. */
export async function governingDocuments(db: Db, activity: string): Promise<string[]> {
  return db('activity_governing_documents as g').join('documents as d', 'd.id', 'g.document_id').where('g.activity', activity).orderBy('d.number').pluck('d.number');
}

/** Replaces the documents governing an activity, audited with the old and new lists. */
export async function setGoverningDocuments(db: Db, activity: string, documentIds: string[], by: { userId: string; username: string }) {
  return db.transaction(async (trx) => {
    const before = await governingDocuments(trx as unknown as Db, activity);
    await trx('activity_governing_documents').where({ activity }).delete();
    if (documentIds.length) {
      await trx('activity_governing_documents').insert(documentIds.map((id) => ({ activity, document_id: id, set_by: by.username })));
    }
    const after = await governingDocuments(trx as unknown as Db, activity);
    await appendAudit(trx, {
      actorId: by.userId,
      actor: by.username,
      action: 'gate.governing_documents_set',
      entityType: 'gate',
      entityId: activity,
      details: { changes: [{ field: 'documents', old: before, new: after }] },
    });
    return after;
  });
}

/** A person's open assignments whose requirement names none of the roles they now hold (or whose person left). */
export async function assignmentsToCancel(db: Db, userId: string): Promise<string[]> {
  return db('training_assignments as a')
    .join('users as u', 'u.id', 'a.user_id')
    .leftJoin('training_requirements as r', 'r.document_id', 'a.document_id')
    .where({ 'a.user_id': userId, 'a.state': 'assigned' })
    .where((b) => b.whereNull('r.document_id').orWhereRaw('not (u.roles && r.roles)'))
    .orderBy('a.workflow_id')
    .pluck('a.workflow_id');
}

/** Effective versions the person should be trained on (an active requirement names a role they hold) with no assignment yet. */
export async function versionsToAssign(db: Db, userId: string) {
  return (
    await db.raw(
      `select d.id as "documentId", d.number as "documentNumber", d.title, v.id as "versionId", v.version
         from users u
         join training_requirements r on r.active and u.roles && r.roles
         join documents d on d.id = r.document_id
         join document_versions v on v.document_id = d.id and v.state = 'effective'
        where u.id = ? and u.active
          and not exists (select 1 from training_assignments a where a.user_id = u.id and a.version_id = v.id)
        order by d.number`,
      [userId],
    )
  ).rows as { documentId: string; documentNumber: string; title: string; versionId: string; version: number }[];
}
