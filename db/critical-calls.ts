import type { Knex } from 'knex';
import { OPEN_CRITICAL_CALL_STATES, type CriticalCallSettings, type WithdrawalReason } from '../common/critical-calls';
import { durationMs } from '../common/durations';
import { workflowIds } from '../common/ids';
import { appendAudit } from './audit';
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
  state: 'calling' | 'escalated' | 'notified' | 'withdrawn';
  call_number: number;
  max_attempts: number;
  deadline_at: Date;
  opened_at: Date;
  escalated_at: Date | null;
  escalation_reason: string | null;
  notified_at: Date | null;
  confirmed_attempt_id: string | null;
  withdrawn_at: Date | null;
  withdrawal_reason: WithdrawalReason | null;
  withdrawn_by: string | null;
}

/** The analysis's newest call (an analysis has a new one after a withdrawal or a confirmed call). */
export const callOfAnalysis = (db: Db | Knex.Transaction, analysisId: string): Promise<CriticalCallRow | undefined> =>
  db('critical_calls').where({ analysis_id: analysisId }).orderBy('call_number', 'desc').first();

type Trx = Knex.Transaction;
type Who = { userId: string; username: string } | null;
interface CalledAnalysis {
  id: string;
  workflow_id: string;
  sample_id: string;
  accession: string;
  test_code: string;
  retest_number: number;
}

/**
 * Decides, in the transaction that applies a critical entry, which call the analysis's run starts or joins: the
 * open call (calling or escalated) if there is one; none when the newest call was confirmed with this same value
 * (the clinician has read it back already); otherwise a new call, numbered after the analysis's calls in PostgreSQL
 * and written here (state `calling`, the settings it keeps, audit `critical_call.opened`), so its workflow ID is
 * chosen from the record and a withdrawal in the next step always finds it. Answers the call's workflow ID or null.
 */
export async function callForCriticalEntry(
  trx: Trx,
  p: { analysis: CalledAnalysis; entry: { id: string; flag: string; numeric_value: string | number | null; unit: string | null }; settings: CriticalCallSettings; auditKey: string },
): Promise<string | null> {
  const { analysis, entry } = p;
  // The sample first (as setting an ordering provider locks it, then its calls): a provider being set at this moment
  // is either read here or sets this call's after it commits.
  const sample = await trx('samples').where({ id: analysis.sample_id }).forShare().first('ordering_provider_id');
  const calls: CriticalCallRow[] = await trx('critical_calls').where({ analysis_id: analysis.id }).orderBy('call_number', 'desc').forNoKeyUpdate();
  const open = calls.find((c) => (OPEN_CRITICAL_CALL_STATES as readonly string[]).includes(c.state));
  if (open) return open.workflow_id;
  const newest = calls[0];
  if (newest?.state === 'notified' && newest.confirmed_attempt_id) {
    const confirmed = await trx('critical_call_attempts as t')
      .join('analysis_entries as e', 'e.id', 't.entry_id')
      .where('t.id', newest.confirmed_attempt_id)
      .first('e.numeric_value', 'e.unit');
    const same = confirmed && confirmed.unit === entry.unit && Number(confirmed.numeric_value) === Number(entry.numeric_value);
    if (same) return null;
  }
  const callNumber = (newest?.call_number ?? 0) + 1;
  const workflowId = workflowIds.criticalCall(analysis.accession, analysis.test_code, analysis.retest_number, callNumber);
  const [row] = await trx('critical_calls')
    .insert({
      workflow_id: workflowId,
      analysis_id: analysis.id,
      call_number: callNumber,
      sample_id: analysis.sample_id,
      accession: analysis.accession,
      test_code: analysis.test_code,
      entry_id: entry.id,
      flag: entry.flag,
      ordering_provider_id: sample?.ordering_provider_id ?? null,
      max_attempts: p.settings.maxAttempts,
      deadline_at: trx.raw('now() + make_interval(secs => ?)', [durationMs(p.settings.deadline) / 1000]),
    })
    .returning('*');
  await appendAudit(trx, {
    actor: 'system:critical-calls',
    action: 'critical_call.opened',
    entityType: 'critical_call',
    entityId: workflowId,
    details: {
      accession: analysis.accession,
      test: analysis.test_code,
      analysis: analysis.workflow_id,
      callNumber,
      orderingProviderId: row.ordering_provider_id,
      maxAttempts: p.settings.maxAttempts,
      deadline: p.settings.deadline,
    },
    idempotencyKey: p.auditKey,
  });
  return workflowId;
}

/** An analysis and every analysis it retests, itself first, then its original, that one's original and so on. */
async function analysisChain(trx: Trx, analysisId: string): Promise<string[]> {
  const { rows } = await trx.raw(
    `with recursive chain(id, depth) as (
       select ?::uuid, 0
       union all
       select a.retest_of, c.depth + 1 from analyses a join chain c on a.id = c.id where a.retest_of is not null
     )
     select id from chain order by depth`,
    [analysisId],
  );
  return rows.map((r: { id: string }) => r.id);
}

/**
 * Locks the calls of an analysis and of every analysis it retests, in one statement ordered by ID. A step that may
 * join or withdraw them takes them before it writes its first audit event: a call's own steps (an attempt, an
 * escalation) lock the call and then append to the audit trail, whose lock is held to the commit, so taking a call
 * after that lock could close a cycle. Answers the chain, the analysis first.
 */
export async function lockCallsOfAnalysisChain(trx: Trx, analysisId: string): Promise<string[]> {
  const chain = await analysisChain(trx, analysisId);
  await trx('critical_calls').whereIn('analysis_id', chain).orderBy('id').forNoKeyUpdate().select('id');
  return chain;
}

/**
 * A retest's result (or its cancellation) settles what its original said: the calls still open on the analyses it
 * retests (a call that was being made while the retest was run) are withdrawn, each audited. `retested` is that
 * chain without the retest itself (lockCallsOfAnalysisChain answers it); a rejected specimen's cancellation passes
 * the retested analyses of the tests it took. Answers their runs, a retry the same ones (see withdrawOpenCall).
 */
export async function withdrawCallsOfRetested(
  trx: Trx,
  p: { retested: string[]; reason: WithdrawalReason; by: Who; cause: Record<string, unknown>; auditKey: string },
): Promise<string[]> {
  const withdrawn: string[] = [];
  for (const of of p.retested) {
    const call = await withdrawOpenCall(trx, { ...p, analysisId: of, auditKey: `${p.auditKey}:${of}` });
    if (call) withdrawn.push(call);
  }
  return withdrawn;
}

/**
 * Withdraws the analysis's open call (calling or escalated), in the transaction of the step that made its value stop
 * being critical: the state `withdrawn` with the reason, the time (PostgreSQL's clock) and whose action it was, and
 * audit `critical_call.withdrawn` (how many attempts there were, how many reached someone, whether it had
 * escalated; no value). A confirmed call is never withdrawn. Answers the withdrawn call's workflow ID, or null; a
 * retry of a step whose transaction committed finds the call withdrawn under its audit key and answers it again, so
 * the run it answers to is told all the same.
 */
export async function withdrawOpenCall(
  trx: Trx,
  p: { analysisId: string; reason: WithdrawalReason; by: Who; cause: Record<string, unknown>; auditKey: string },
): Promise<string | null> {
  const call: CriticalCallRow | undefined = await trx('critical_calls')
    .where({ analysis_id: p.analysisId })
    .whereIn('state', OPEN_CRITICAL_CALL_STATES)
    .forNoKeyUpdate()
    .first();
  if (!call) return withdrawnUnder(trx, p.auditKey);
  await trx('critical_calls')
    .where({ id: call.id })
    .update({ state: 'withdrawn', withdrawn_at: trx.fn.now(), withdrawal_reason: p.reason, withdrawn_by: p.by?.userId ?? null });
  const outcomes: string[] = await trx('critical_call_attempts').where({ call_id: call.id }).pluck('outcome');
  await appendAudit(trx, {
    actorId: p.by?.userId ?? null,
    actor: p.by?.username ?? 'system:critical-calls',
    action: 'critical_call.withdrawn',
    entityType: 'critical_call',
    entityId: call.workflow_id,
    details: {
      accession: call.accession,
      test: call.test_code,
      reason: p.reason,
      ...p.cause,
      attempts: outcomes.length,
      reached: outcomes.filter((o) => o === 'REACHED_NO_READBACK').length,
      escalated: call.state === 'escalated',
    },
    idempotencyKey: p.auditKey,
  });
  return call.workflow_id;
}

/** The call a step withdrew under this audit key already (its idempotency key in the trail), or null. */
async function withdrawnUnder(trx: Trx, auditKey: string): Promise<string | null> {
  const event = await trx('audit_events').where({ idempotency_key: auditKey, action: 'critical_call.withdrawn', entity_type: 'critical_call' }).first('entity_id');
  return event?.entity_id ?? null;
}

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
