import type { Knex } from 'knex';
import { OPEN_CAPA_STAGES, type CapaSource, type CapaStage, type RiskLevel } from '../common/capa';
import type { Db } from './knex';

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
  if (f.source) {
    q.whereExists((s) =>
      s
        .from('capa_sources as s')
        .whereRaw('s.capa_number = c.number')
        .where({ 's.source_type': f.source!.type, 's.source_id': f.source!.id }),
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
