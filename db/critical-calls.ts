import type { Knex } from 'knex';
import type { Db } from './knex';

/**
 * Whether what a caller typed as read back is the stored value: a number (a decimal comma accepted, the test's unit
 * after it allowed) equal to the value; anything else, or nothing, is not a read-back.
 */
export function readBackMatches(typed: string | null, stored: string | number | null, unit: string | null): boolean {
  if (typed === null || stored === null) return false;
  let text = typed.trim();
  if (unit && text.toLowerCase().endsWith(unit.toLowerCase())) text = text.slice(0, -unit.length).trim();
  text = text.replace(',', '.');
  if (!/^[-+]?(\d+(\.\d*)?|\.\d+)$/.test(text)) return false;
  return Math.abs(Number(text) - Number(stored)) < 1e-9;
}

export interface CriticalCallRow {
  id: string;
  workflow_id: string;
  analysis_id: string;
  accession: string;
  test_code: string;
  entry_id: string;
  flag: string;
  ordering_provider_id: string | null;
  state: 'calling' | 'escalated' | 'notified';
  max_attempts: number;
  deadline_at: Date;
  opened_at: Date;
  escalated_at: Date | null;
  escalation_reason: string | null;
  notified_at: Date | null;
  confirmed_attempt_id: string | null;
}

export const callOfAnalysis = (db: Db | Knex.Transaction, analysisId: string): Promise<CriticalCallRow | undefined> =>
  db('critical_calls').where({ analysis_id: analysisId }).first();

/** The calls with their ordering provider and attempt count, for lists and views (no value). */
export const callsQuery = (db: Db) =>
  db('critical_calls as c')
    .leftJoin('users as p', 'p.id', 'c.ordering_provider_id')
    .join('analyses as a', 'a.id', 'c.analysis_id')
    .select(
      'c.*',
      'a.retest_number',
      'p.username as provider_username',
      'p.printed_name as provider_name',
      db.raw('(select count(*)::int from critical_call_attempts t where t.call_id = c.id) as attempts'),
    );

/** The attempts of a call, in order, with who called. */
export const attemptsOf = (db: Db, callId: string) =>
  db('critical_call_attempts as t').join('users as u', 'u.id', 't.called_by').where('t.call_id', callId).orderBy('t.seq').select('t.*', 'u.username as called_by_username');

/** Stages what a caller typed for an attempt (kept out of the run's history); answers its ID. */
export async function stageAttempt(
  db: Db,
  row: { callId: string; requestId: string; requestedBy: string; calledUserId: string | null; calledName: string | null; outcome: string; readBack: string | null; note: string | null },
): Promise<string> {
  const [staged] = await db('critical_call_requests')
    .insert({
      call_id: row.callId,
      request_id: row.requestId,
      requested_by: row.requestedBy,
      called_user_id: row.calledUserId,
      called_name: row.calledName,
      reported_outcome: row.outcome,
      read_back: row.readBack,
      note: row.note,
    })
    .returning('id');
  return staged.id;
}

export const dropStagedAttempt = (db: Db, id: string) => db('critical_call_requests').where({ id }).del();
