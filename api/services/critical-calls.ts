import { WorkflowUpdateFailedError } from '@temporalio/client';
import {
  boundAttemptArgs,
  CRITICAL_CALL_ACTION,
  isCriticalFlag,
  logAttemptUpdate,
  OPEN_CRITICAL_CALL_STATES,
  type CriticalCallState,
} from '../../common/critical-calls';
import type { Actor } from '../../common/roles';
import { attemptsOf, callOfAnalysis, callsQuery, dropStagedAttempt, stageAttempt, type CriticalCallRow } from '../../db/critical-calls';
import { afterRow, decodeCursor, encodeCursor } from '../../db/keyset';
import type { Db } from '../../db/knex';
import type { ApiDeps } from '../deps';
import { problems } from '../problem';
import type { AttemptBody } from '../schemas/critical-calls';
import { grantAction } from '../signing';
import { loadAnalysis, type AnalysisRow } from './results';

type Deps = Pick<ApiDeps, 'db' | 'temporal' | 'config'>;
const iso = (d: Date | string | null) => (d === null ? null : new Date(d).toISOString());
const num = (v: string | number | null) => (v === null ? null : Number(v));

type ListedCall = CriticalCallRow & { retest_number: number; provider_username: string | null; provider_name: string | null; attempts: number };

function summaryOf(c: ListedCall) {
  return {
    workflowId: c.workflow_id,
    accession: c.accession,
    test: c.test_code,
    retestNumber: c.retest_number,
    flag: c.flag as 'critical_low' | 'critical_high',
    state: c.state,
    orderingProvider: c.provider_username ? { username: c.provider_username, printedName: c.provider_name ?? c.provider_username } : null,
    openedAt: iso(c.opened_at)!,
    deadlineAt: iso(c.deadline_at)!,
    maxAttempts: c.max_attempts,
    attempts: c.attempts,
    escalatedAt: iso(c.escalated_at),
    escalationReason: c.escalation_reason as 'attempts' | 'deadline' | 'no_ordering_provider' | null,
    notifiedAt: iso(c.notified_at),
    callNumber: c.call_number,
    withdrawnAt: iso(c.withdrawn_at),
    withdrawalReason: c.withdrawal_reason,
  };
}

type AttemptRow = Record<string, unknown> & { seq: number; called_by_username: string };
const attemptOf = (t: AttemptRow) => ({
  seq: t.seq,
  requestId: t.request_id as string,
  calledBy: { username: t.called_by_username, printedName: t.called_by_name as string },
  called: { kind: t.called_kind as 'ordering_provider' | 'other', name: t.called_name as string },
  outcome: t.outcome as 'CONFIRMED',
  reportedOutcome: t.reported_outcome as 'CONFIRMED',
  readBack: (t.read_back as string | null) ?? null,
  readBackMatches: (t.read_back_matches as boolean | null) ?? null,
  note: (t.note as string | null) ?? null,
  afterEscalation: t.after_escalation as boolean,
  attemptedAt: iso(t.attempted_at as Date)!,
});

/** The open (or one state's) calls, oldest first, a keyset page at a time. No value: the list is not a PHI read. */
export async function listCriticalCalls(db: Db, q: { state: string; limit: number; cursor?: string }) {
  const sort = `opened:${q.state}`;
  let after: string | null = null;
  if (q.cursor !== undefined) {
    const cursor = decodeCursor(q.cursor);
    if (!cursor || cursor.sort !== sort) throw problems.validation('the cursor is not one this list gave', [{ field: 'query.cursor', detail: 'not a cursor of this list' }]);
    after = cursor.id;
  }
  const query = callsQuery(db).orderBy([{ column: 'c.opened_at' }, { column: 'c.id' }]);
  if (q.state === 'open') query.whereIn('c.state', OPEN_CRITICAL_CALL_STATES);
  else query.where('c.state', q.state);
  if (after) query.whereRaw(afterRow(['c.opened_at', 'c.id'], false, 'critical_calls', 'c'), [after]);
  const rows = (await query.limit(q.limit + 1)) as ListedCall[];
  const items = rows.slice(0, q.limit);
  const last = items.at(-1);
  return { items: items.map(summaryOf), nextCursor: rows.length > q.limit && last ? encodeCursor({ sort, id: last.id }) : null };
}

/**
 * The test's (newest) analysis and its newest call (after a withdrawal or a confirmed call a critical value opens a
 * new one); a result that is not critical and never was has none (422, nothing written).
 */
async function callOf(db: Db, accession: string, test: string) {
  // A call still open on a retested analysis (its retest has no result yet) is the one to make: its value stands until
  // the retest's result withdraws it.
  const open: CriticalCallRow | undefined = await db('critical_calls')
    .where({ accession, test_code: test })
    .whereIn('state', OPEN_CRITICAL_CALL_STATES)
    .orderBy('opened_at')
    .first();
  if (open) return { analysis: (await db('analyses').where({ id: open.analysis_id }).first()) as AnalysisRow, call: open };
  const analysis = await loadAnalysis(db, accession, test);
  const call = await callOfAnalysis(db, analysis.id);
  if (call) return { analysis, call };
  const entry = analysis.current_entry_id ? await db('analysis_entries').where({ id: analysis.current_entry_id }).first('flag') : null;
  if (!isCriticalFlag(entry?.flag)) {
    throw problems.unprocessable('result-not-critical', `${test} of ${accession} has no critical result: there is no call to log`);
  }
  throw problems.conflict('critical-call-not-open', `the call for ${test} of ${accession} is opening; try again in a moment`);
}

/** One call with the value to read back (from the record) and every attempt. */
export async function criticalCallView(db: Db, accession: string, test: string) {
  const { analysis, call } = await callOf(db, accession, test);
  const listed = (await callsQuery(db).where('c.id', call.id).first()) as ListedCall;
  const entry = await db('analysis_entries').where({ id: analysis.current_entry_id }).first('numeric_value', 'unit', 'flag');
  const attempts = (await attemptsOf(db, call.id)) as AttemptRow[];
  return {
    ...summaryOf(listed),
    result: { value: num(entry?.numeric_value ?? null), unit: entry?.unit ?? null, flag: entry?.flag ?? null },
    attemptLog: attempts.map(attemptOf),
  };
}

/**
 * Logs one attempt: refuses what the request itself gets wrong before anything is written (a result that is not
 * critical, a confirmed or withdrawn call, a CONFIRMED without its read-back), stages what was typed in Postgres, writes the
 * single-use grant and sends the run the staged row's ID. The recording step compares the read-back with the stored
 * value. The same request ID again is answered with the attempt recorded first.
 */
export async function logAttempt(deps: Deps, accession: string, test: string, body: AttemptBody, actor: Actor) {
  const { db } = deps;
  const { call } = await callOf(db, accession, test);
  const answer = async (duplicate: boolean, run?: CriticalCallState) => {
    const attempt = (await attemptsOf(db, call.id).where('t.request_id', body.requestId).first()) as AttemptRow | undefined;
    if (!attempt) throw problems.conflict('attempt-not-recorded', 'the attempt was not recorded; send it again');
    const all = (await attemptsOf(db, call.id)) as AttemptRow[];
    const fresh = (await db('critical_calls').where({ id: call.id }).first('state')) as { state: CriticalCallRow['state'] };
    return {
      attempt: attemptOf(attempt),
      duplicate,
      call: {
        workflowId: call.workflow_id,
        state: run?.state ?? fresh.state,
        attempts: all.length,
        failedAttempts: all.filter((t) => t.outcome !== 'CONFIRMED').length,
      },
    };
  };
  if (await attemptsOf(db, call.id).where('t.request_id', body.requestId).first()) return answer(true);
  if (call.state === 'notified') throw problems.conflict('critical-call-confirmed', `the call for ${test} of ${accession} is already confirmed`);
  if (call.state === 'withdrawn') {
    throw problems.conflict('critical-call-withdrawn', `the call for ${test} of ${accession} was withdrawn: the value is no longer critical`);
  }
  if (body.outcome === 'CONFIRMED' && body.readBack === undefined) {
    throw problems.unprocessable('read-back-required', 'a CONFIRMED call carries the value as it was read back', {
      errors: [{ field: 'body.readBack', detail: 'required with CONFIRMED' }],
    });
  }
  if (body.outcome !== 'CONFIRMED' && body.readBack !== undefined) {
    throw problems.unprocessable('read-back-without-confirmation', 'a read-back is recorded only with the outcome CONFIRMED', {
      errors: [{ field: 'body.readBack', detail: 'only with CONFIRMED' }],
    });
  }
  if (body.called === 'ordering_provider' && !call.ordering_provider_id) {
    throw problems.unprocessable('no-ordering-provider', 'the requisition names no ordering provider: name the person called', {
      errors: [{ field: 'body.called', detail: 'no ordering provider on the requisition' }],
    });
  }
  const stagedId = await stageAttempt(db, {
    callId: call.id,
    requestId: body.requestId,
    requestedBy: actor.userId,
    calledUserId: body.called === 'ordering_provider' ? call.ordering_provider_id : null,
    calledName: body.called === 'ordering_provider' ? null : body.called.name,
    outcome: body.outcome,
    readBack: body.readBack ?? null,
    note: body.note ?? null,
  });
  const args = { requestId: body.requestId, attemptRequestId: stagedId, outcome: body.outcome };
  let run: CriticalCallState;
  try {
    const grant = await grantAction(deps, actor, { workflowId: call.workflow_id, action: CRITICAL_CALL_ACTION, args: boundAttemptArgs(args) });
    run = await deps.temporal.workflow
      .getHandle(call.workflow_id)
      .executeUpdate(logAttemptUpdate, { args: [{ ...args, actor, grant }], updateId: `attempt:${body.requestId}` });
  } catch (err) {
    await dropStagedAttempt(db, stagedId);
    // Another request with this ID got there first (the run answered it): answer that attempt.
    if (!(err instanceof WorkflowUpdateFailedError) && (await attemptsOf(db, call.id).where('t.request_id', body.requestId).first())) return answer(true);
    throw err;
  }
  return answer(false, run);
}
