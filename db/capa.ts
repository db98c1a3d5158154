import type { Knex } from 'knex';
import { OPEN_CAPA_STAGES, type CapaSource, type CapaStage, type RiskLevel } from '../common/capa';
import { assigneeKey, type AssigneeRef } from '../common/assignees';
import type { SupplierQualificationStatus } from '../common/supplier-qualification';
import { diff, type FieldChange } from './field-changes';
import type { Db } from './knex';
import type { TaskEnd } from './tasks';

/** The next number of the year from that year's Postgres sequence: CAPA-2026-0007. */
export async function allocateCapaNumber(db: Db | Knex.Transaction, year = new Date().getUTCFullYear()): Promise<string> {
  return (await db.raw('select next_capa_number(?) as number', [year])).rows[0].number;
}

export interface CapaRow {
  number: string;
  workflow_id: string;
  title: string;
  stage: CapaStage;
  outcome: string | null;
  round: number;
  risk_score: number | null;
  risk_level: RiskLevel | null;
  owner: string | null;
  owner_user_id: string | null;
  assignees: string[];
  due_at: Date | null;
  merged_into: string | null;
  initiated_by: string;
  initiated_at: Date;
  closed_at: Date | null;
  updated_at: Date;
}

/** Open CAPAs that already name one of these sources: the API offers to link to them instead of a duplicate. */
export async function openCapasNaming(db: Db, sources: CapaSource[]): Promise<{ number: string; stage: string; source: string }[]> {
  if (!sources.length) return [];
  return db('capa_sources as s')
    .join('capas as c', 'c.number', 's.capa_number')
    .whereIn('c.stage', OPEN_CAPA_STAGES)
    .andWhere((q) => {
      for (const s of sources) q.orWhere({ 's.source_type': s.type, 's.source_id': s.id });
    })
    .orderBy('c.number')
    .select('c.number', 'c.stage', db.raw("s.source_type || ':' || s.source_id as source"));
}

export async function findCapa(db: Db, number: string): Promise<CapaRow | undefined> {
  return db('capas').where({ number }).first();
}

export interface CapaFilter {
  stage?: CapaStage;
  ownerUserId?: string;
  overdue?: boolean;
  risk?: RiskLevel;
  source?: CapaSource;
  limit: number;
  offset: number;
}

export async function listCapas(db: Db, f: CapaFilter) {
  const q = db('capas as c')
    .select('c.number', 'c.title', 'c.stage', 'c.outcome', 'c.round', 'c.risk_score', 'c.risk_level', 'c.owner', 'c.assignees')
    .select('c.due_at', 'c.initiated_by', 'c.initiated_at', 'c.closed_at', 'c.workflow_id')
    .select(db.raw(`(c.due_at < now() and c.stage not in ('closed', 'cancelled')) as overdue`))
    .orderBy('c.number', 'desc')
    .limit(f.limit)
    .offset(f.offset);
  if (f.stage) q.where('c.stage', f.stage);
  if (f.risk) q.where('c.risk_level', f.risk);
  if (f.ownerUserId) q.where('c.owner_user_id', f.ownerUserId);
  if (f.overdue !== undefined) {
    const overdue = `c.due_at < now() and c.stage not in ('closed', 'cancelled')`;
    q.whereRaw(f.overdue ? overdue : `not coalesce(${overdue}, false)`);
  }
  const source = f.source;
  if (source) {
    q.whereExists((s) =>
      s.from('capa_sources as s').whereRaw('s.capa_number = c.number').where({ 's.source_type': source.type, 's.source_id': source.id }),
    );
  }
  return q;
}

export async function capaSources(db: Db, number: string) {
  return db('capa_sources')
    .where({ capa_number: number })
    .orderBy('linked_at')
    .select('source_type', 'source_id', 'linked_by', 'linked_at');
}

export async function capaActions(db: Db, number: string) {
  return db('capa_actions').where({ capa_number: number }).orderBy(['round', 'action_id']);
}

/** Open CAPAs in which this user holds something (owner, an assignee, an action): told when the user is deactivated. */
export async function openCapasHeldBy(db: Db, userId: string, username: string): Promise<string[]> {
  const rows = await db('capas as c')
    .whereIn('c.stage', [...OPEN_CAPA_STAGES, 'closed'])
    .andWhere((q) => {
      q.where('c.owner_user_id', userId)
        .orWhereRaw('? = any(c.assignees)', [`user:${username}`])
        .orWhereExists((a) =>
          a.from('capa_actions as a').whereRaw('a.capa_number = c.number').where({ 'a.owner_user_id': userId, 'a.state': 'open' }),
        );
    })
    .pluck('c.workflow_id');
  return rows;
}

/** The capas row as of one revision of the run's state. */
export interface CapaProjection {
  stage: CapaStage;
  outcome: string | null;
  round: number;
  risk: { severity: number; occurrence: number; score: number; level: RiskLevel } | null;
  owner: AssigneeRef | null;
  assignees: string[];
  dueAt: string | null;
  mergedInto: string | null;
  initiatedBy: string;
  closedAt: string | null;
}

/**
 * The capas row as the run's state stands at one revision; a write of an older revision changes nothing. Answers
 * each field the write changed with its old and new value (every field set, for the CAPA's first write), for the
 * audit event the caller writes in the same transaction.
 */
export async function writeCapaProjection(
  trx: Knex.Transaction,
  capa: { workflowId: string; number: string; title: string },
  rev: number,
  p: CapaProjection,
): Promise<FieldChange[]> {
  const row = {
    number: capa.number,
    workflow_id: capa.workflowId,
    title: capa.title,
    stage: p.stage,
    outcome: p.outcome,
    round: p.round,
    risk_severity: p.risk?.severity ?? null,
    risk_occurrence: p.risk?.occurrence ?? null,
    risk_score: p.risk?.score ?? null,
    risk_level: p.risk?.level ?? null,
    owner: p.owner ? assigneeKey(p.owner) : null,
    owner_user_id: p.owner?.kind === 'user' ? p.owner.userId : null,
    assignees: p.assignees,
    due_at: p.dueAt,
    merged_into: p.mergedInto,
    initiated_by: p.initiatedBy,
    closed_at: p.closedAt,
    updated_at: trx.fn.now(),
    rev,
  };
  const { number: _n, workflow_id: _w, initiated_by: _i, ...changes } = row;
  const fields = Object.keys(row).filter((field) => field !== 'updated_at' && field !== 'rev');
  const before = await trx('capas').where({ number: capa.number }).forNoKeyUpdate().first(fields);
  const [after] = await trx('capas')
    .insert(row)
    .onConflict('number')
    .merge(changes)
    .where('capas.rev', '<', rev)
    .returning(fields);
  return after ? diff(before ?? null, after, { fields }) : [];
}

export async function linkCapaSources(trx: Knex.Transaction, number: string, sources: CapaSource[], by: string): Promise<void> {
  if (!sources.length) return;
  await trx('capa_sources')
    .insert(sources.map((s) => ({ capa_number: number, source_type: s.type, source_id: s.id, linked_by: by })))
    .onConflict(['capa_number', 'source_type', 'source_id'])
    .ignore();
}

/** An action of one round as the run holds it. */
export interface CapaActionRow {
  round: number;
  id: string;
  type: string;
  description: string;
  owner: AssigneeRef;
  dueAt: string;
  state: 'open' | 'done' | 'superseded';
  extensions: number;
  completedBy: string | null;
  completedAt: string | null;
  evidence: { text: string; attachments: string[] } | null;
}

/** Each action as the run holds it now, keyed by CAPA, round and action ID. */
export async function writeCapaActions(trx: Knex.Transaction, number: string, actions: CapaActionRow[]): Promise<void> {
  for (const a of actions) {
    const row = {
      capa_number: number,
      round: a.round,
      action_id: a.id,
      type: a.type,
      description: a.description,
      owner: assigneeKey(a.owner),
      owner_user_id: a.owner.kind === 'user' ? a.owner.userId : null,
      due_at: a.dueAt,
      state: a.state,
      extensions: a.extensions,
      completed_by: a.completedBy,
      completed_at: a.completedAt,
      evidence: a.evidence === null ? null : JSON.stringify(a.evidence),
    };
    await trx('capa_actions').insert(row).onConflict(['capa_number', 'round', 'action_id']).merge();
  }
}

/** What a person recorded at a stage; the idempotency key makes a retried write a no-op. */
export async function writeCapaRecord(
  trx: Knex.Transaction,
  idempotencyKey: string,
  number: string,
  record: { kind: string; round: number; body: unknown; by: string },
): Promise<void> {
  await trx('capa_records')
    .insert({
      idempotency_key: idempotencyKey,
      capa_number: number,
      round: record.round,
      kind: record.kind,
      body: JSON.stringify(record.body),
      recorded_by: record.by,
    })
    .onConflict('idempotency_key')
    .ignore();
}

const escapeLike = (prefix: string) => prefix.replace(/[\\%_]/g, '\\$&');

/** Closes the open tasks under a key prefix, naming who closed them (a task done by a person names them). */
export async function closeCapaTasks(trx: Knex.Transaction, prefix: string, state: TaskEnd, by: string | null): Promise<number> {
  return trx('tasks')
    .where('state', 'open')
    .andWhere('task_key', 'like', `${escapeLike(prefix)}%`)
    .update({ state, closed_at: trx.fn.now(), closed_by: by });
}

export async function retimeCapaTasks(trx: Knex.Transaction, prefix: string, dueAt: string): Promise<void> {
  await trx('tasks')
    .where('state', 'open')
    .andWhere('task_key', 'like', `${escapeLike(prefix)}%`)
    .update({ due_at: dueAt });
}

/** Those of these users who are no longer active. */
export async function inactiveUserIds(trx: Knex.Transaction, userIds: string[]): Promise<string[]> {
  return userIds.length ? trx('users').whereIn('id', userIds).where('active', false).pluck('id') : [];
}

/** A user's ID by username, active or not (a list filtered by owner finds past owners too). */
export async function userIdOf(db: Db, username: string): Promise<string | undefined> {
  return (await db('users').where({ username }).first('id'))?.id;
}

/** A user whatever their state, for hand-over after deactivation. */
export async function findUser(db: Db, username: string): Promise<{ id: string; username: string; active: boolean } | undefined> {
  return db('users').where({ username }).first('id', 'username', 'active');
}

/** Whether the ERP sync knows a supplier (not deleted), and the supplier's qualification status ('pending' if none). */
export async function supplierStanding(db: Db, supplier: string): Promise<{ known: boolean; status: SupplierQualificationStatus }> {
  const known = await db('erp_suppliers').where({ name: supplier }).whereNull('deleted_at').first('name');
  const status = (await db('supplier_qualifications').where({ supplier }).first('status'))?.status ?? 'pending';
  return { known: !!known, status };
}
