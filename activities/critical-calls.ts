import { ApplicationFailure, Context } from '@temporalio/activity';
import type { Knex } from 'knex';
import {
  boundAttemptArgs,
  CRITICAL_CALL_ACTION,
  CRITICAL_CALL_ROLES,
  DEFAULT_CRITICAL_CALL_SETTINGS,
  isCriticalFlag,
  type CallOutcome,
  type CriticalCallInput,
  type CriticalCallSettings,
  type CriticalCallStateName,
  type WithdrawalReason,
} from '../common/critical-calls';
import { durationMs } from '../common/durations';
import { FailureType } from '../common/failures';
import { workflowIds } from '../common/ids';
import { appendAudit } from '../db/audit';
import { readBackMatches } from '../db/critical-calls';
import { resolveRecipients } from '../db/recipients';
import type { ActivityDeps } from './deps';
import { activityKey } from './keys';
import { grantChecks, Refusal, type RecordRef } from './lib/grant-checks';
import { writeNotice } from './notice-writer';

/** A call as its run names it: IDs only. */
export interface CallRef {
  workflowId: string;
  callId: string;
  accession: string;
  test: string;
}

const refused = (type: FailureType, message: string) => ApplicationFailure.create({ type, message, nonRetryable: true });

export function criticalCallActivities(deps: ActivityDeps) {
  const { db, publicUrl, mailDomain } = deps;
  const settings: CriticalCallSettings = deps.criticalCalls ?? DEFAULT_CRITICAL_CALL_SETTINGS;
  const checks = grantChecks(deps);
  const link = (ref: Pick<CallRef, 'accession' | 'test'>) => `${publicUrl}/api/v1/samples/${ref.accession}/analyses/${ref.test}/critical-call`;
  const recordRef = (ref: CallRef): RecordRef => ({
    workflowId: ref.workflowId,
    entityType: 'critical_call',
    entityId: ref.workflowId,
    label: `the critical-value call for ${ref.test} of ${ref.accession}`,
    link: link(ref),
  });

  /** One audit event; a second event of the same activity names its own key suffix (else it would be dropped as a repeat). */
  async function audit(
    trx: Knex.Transaction,
    ref: CallRef,
    action: string,
    actor: { userId: string; username: string } | null,
    details: Record<string, unknown>,
    keySuffix = '',
  ) {
    await appendAudit(trx, {
      actorId: actor?.userId ?? null,
      actor: actor?.username ?? 'system:critical-calls',
      action,
      entityType: 'critical_call',
      entityId: ref.workflowId,
      details: { accession: ref.accession, test: ref.test, ...details },
      idempotencyKey: activityKey(keySuffix),
    });
  }

  return {
    /**
     * Opens the call for a critical analysis (or finds the one already open): the analysis's newest applied entry
     * flagged critical is the proof that a call is due. Answers the call's ID, whether the requisition names an
     * ordering provider, and the settings the run waits by; never the value.
     */
    async openCriticalCall(p: { workflowId: string; input: CriticalCallInput }): Promise<{
      callId: string;
      hasOrderingProvider: boolean;
      state: CriticalCallStateName;
      settings: CriticalCallSettings;
      openedAt: string;
      /** From now until the deadline the record holds, by PostgreSQL's clock (the one that wrote it). */
      deadlineInMs: number;
    }> {
      const { input, workflowId } = p;
      const running = Context.current().info.workflowExecution?.workflowId;
      const notThisCall = () => refused(FailureType.NotFound, `${workflowId} is not the call of ${input.test} of ${input.accession}`);
      if (running !== workflowId) throw notThisCall();
      return db.transaction(async (trx) => {
        // The analysis's recording step opened the call (and chose its workflow ID); a run started before it did so
        // opens the analysis's first call here.
        const existing = await trx('critical_calls').where({ workflow_id: workflowId }).first();
        const answer = async (row: { id: string; ordering_provider_id: string | null; state: CriticalCallStateName; opened_at: Date; max_attempts: number }) => {
          const left = await trx('critical_calls')
            .where({ id: row.id })
            .first(trx.raw('greatest(0, floor(extract(epoch from (deadline_at - now())) * 1000))::bigint as ms'));
          return {
            callId: row.id,
            hasOrderingProvider: row.ordering_provider_id !== null,
            state: row.state,
            settings: { ...settings, maxAttempts: row.max_attempts },
            openedAt: new Date(row.opened_at).toISOString(),
            deadlineInMs: Number(left.ms),
          };
        };
        if (existing) {
          if (existing.analysis_id !== input.analysisId || existing.accession !== input.accession || existing.test_code !== input.test) throw notThisCall();
          return answer(existing);
        }
        if (workflowId !== workflowIds.criticalCall(input.accession, input.test, input.retestNumber)) throw notThisCall();
        const analysis = await trx('analyses').where({ id: input.analysisId, workflow_id: input.analysisWorkflowId }).first('id', 'sample_id', 'accession', 'test_code');
        if (!analysis || analysis.accession !== input.accession || analysis.test_code !== input.test) {
          throw refused(FailureType.NotFound, `${input.analysisWorkflowId} is not an analysis of ${input.test} of ${input.accession}`);
        }
        const entry = await trx('analysis_entries')
          .where({ analysis_id: analysis.id })
          .whereNotNull('applied_at')
          .whereIn('flag', ['critical_low', 'critical_high'])
          .orderBy('applied_at', 'desc')
          .first('id', 'flag');
        if (!entry) throw refused(FailureType.InvalidInput, `${input.test} of ${input.accession} has no critical result`);
        // Shared lock: a provider being set at this moment is either read here or sets this call's after it commits.
        const sample = await trx('samples').where({ id: analysis.sample_id }).forShare().first('ordering_provider_id');
        const [row] = await trx('critical_calls')
          .insert({
            workflow_id: workflowId,
            analysis_id: analysis.id,
            sample_id: analysis.sample_id,
            accession: input.accession,
            test_code: input.test,
            entry_id: entry.id,
            flag: entry.flag,
            ordering_provider_id: sample?.ordering_provider_id ?? null,
            max_attempts: settings.maxAttempts,
            deadline_at: trx.raw('now() + make_interval(secs => ?)', [durationMs(settings.deadline) / 1000]),
          })
          .returning('*');
        const ref = { workflowId, callId: row.id, accession: input.accession, test: input.test };
        await audit(trx, ref, 'critical_call.opened', null, {
          analysis: input.analysisWorkflowId,
          orderingProviderId: row.ordering_provider_id,
          maxAttempts: settings.maxAttempts,
          deadline: settings.deadline,
        });
        return answer(row);
      });
    },

    /**
     * Records one attempt, write-once, in one transaction with its proof: the grant the API wrote for this person,
     * this call and this staged request. The read-back the caller typed is compared here with the value stored for
     * the analysis: only a matching read-back makes the attempt CONFIRMED (and the call notified); a mismatch is
     * recorded as reached without a read-back. The same request ID again answers the attempt recorded first.
     */
    async recordCriticalCallAttempt(p: {
      ref: CallRef;
      proof: { grant: unknown; actor: unknown; requestId: unknown; attemptRequestId: unknown; outcome: unknown };
      escalated: boolean;
    }): Promise<{ attemptId: string; seq: number; outcome: CallOutcome; failedAttempts: number; duplicate: boolean }> {
      const { ref, proof } = p;
      return checks.recording(recordRef(ref), CRITICAL_CALL_ACTION, async (trx) => {
        const call = await checks.ownedByRun(trx, ref, 'critical_calls', ref.callId);
        const failedAttempts = async () =>
          Number((await trx('critical_call_attempts').where({ call_id: call.id }).whereNot({ outcome: 'CONFIRMED' }).count({ n: '*' }))[0].n);
        const earlier = await trx('critical_call_attempts').where({ call_id: call.id, request_id: String(proof.requestId) }).first('id', 'seq', 'outcome');
        if (earlier) return { attemptId: earlier.id, seq: earlier.seq, outcome: earlier.outcome, failedAttempts: await failedAttempts(), duplicate: true };
        const actor = await checks.granted(
          trx,
          ref,
          { grantId: proof.grant, action: CRITICAL_CALL_ACTION, actor: proof.actor, args: boundAttemptArgs(proof) },
          (user) => CRITICAL_CALL_ROLES.some((role) => user.roles.includes(role)),
        );
        const staged = await trx('critical_call_requests').where({ id: proof.attemptRequestId, call_id: call.id }).first();
        if (!staged || staged.requested_by !== actor.userId || staged.request_id !== proof.requestId || staged.reported_outcome !== proof.outcome) {
          throw new Refusal('not_from_labflow', actor.userId);
        }
        if (call.state === 'notified') throw refused(FailureType.RunFinished, `the critical-value call for ${ref.test} of ${ref.accession} is already confirmed`);
        if (call.state === 'withdrawn') {
          throw refused(FailureType.CriticalCallWithdrawn, `the critical-value call for ${ref.test} of ${ref.accession} was withdrawn: the value is no longer critical`);
        }
        const analysis = await trx('analyses').where({ id: call.analysis_id }).first('current_entry_id');
        const entry = await trx('analysis_entries').where({ id: analysis.current_entry_id }).first('id', 'numeric_value', 'unit', 'flag');
        if (!entry || !isCriticalFlag(entry.flag)) {
          throw refused(FailureType.InvalidInput, `${ref.test} of ${ref.accession} no longer shows a critical value`);
        }
        const reported = staged.reported_outcome as CallOutcome;
        const matches = reported === 'CONFIRMED' ? readBackMatches(staged.read_back, entry.numeric_value, entry.unit) : null;
        const outcome: CallOutcome = reported === 'CONFIRMED' && !matches ? 'REACHED_NO_READBACK' : reported;
        const seq = Number((await trx('critical_call_attempts').where({ call_id: call.id }).count({ n: '*' }))[0].n) + 1;
        const called = staged.called_user_id ? await trx('users').where({ id: staged.called_user_id }).first('printed_name') : null;
        const [attempt] = await trx('critical_call_attempts')
          .insert({
            call_id: call.id,
            seq,
            request_id: staged.request_id,
            called_by: actor.userId,
            called_by_name: actor.printedName,
            called_kind: staged.called_user_id ? 'ordering_provider' : 'other',
            called_user_id: staged.called_user_id,
            called_name: called?.printed_name ?? staged.called_name,
            outcome,
            reported_outcome: reported,
            entry_id: entry.id,
            read_back: staged.read_back,
            read_back_matches: matches,
            note: staged.note,
            after_escalation: call.state === 'escalated',
            grant_id: String(proof.grant),
          })
          .returning(['id', 'attempted_at']);
        if (outcome === 'CONFIRMED') {
          await trx('critical_calls').where({ id: call.id }).update({ state: 'notified', notified_at: attempt.attempted_at, confirmed_attempt_id: attempt.id });
        }
        await audit(trx, ref, 'critical_call.attempt_logged', actor, {
          seq,
          outcome,
          reportedOutcome: reported,
          readBackMatches: matches,
          calledKind: staged.called_user_id ? 'ordering_provider' : 'other',
          attemptId: attempt.id,
        });
        if (outcome === 'CONFIRMED') await audit(trx, ref, 'critical_call.notified', actor, { attemptId: attempt.id }, 'notified');
        return { attemptId: attempt.id, seq, outcome, failedAttempts: await failedAttempts(), duplicate: false };
      });
    },

    /**
     * Calls in the lab director: the call is marked escalated with its reason, and every lab director gets an urgent
     * notice (SMS and Slack at once, email and in-app, up the escalation chain until acknowledged) naming the
     * accession and the test only. Answers the notice to run; the same escalation again writes nothing.
     */
    async escalateCriticalCall(p: {
      ref: CallRef;
      reason: 'attempts' | 'deadline' | 'no_ordering_provider';
    }): Promise<{ noticeIds: string[]; outboxIds: string[]; state?: CriticalCallStateName }> {
      const { ref, reason } = p;
      return db.transaction(async (trx) => {
        const call = await trx('critical_calls').where({ id: ref.callId, workflow_id: ref.workflowId }).forNoKeyUpdate().first();
        if (!call || Context.current().info.workflowExecution?.workflowId !== ref.workflowId) {
          throw refused(FailureType.NotFound, `${ref.workflowId} is not this run's call`);
        }
        // A call no longer calling is not escalated: one withdrawn meanwhile answers so, and its run ends withdrawn.
        // One confirmed meanwhile (an attempt recorded while this step waited for the row) answers so too: the run
        // keeps it notified instead of taking it for escalated.
        if (call.state !== 'calling') return { noticeIds: [], outboxIds: [], state: call.state };
        await trx('critical_calls').where({ id: call.id }).update({ state: 'escalated', escalated_at: trx.fn.now(), escalation_reason: reason });
        const attempts = Number((await trx('critical_call_attempts').where({ call_id: call.id }).count({ n: '*' }))[0].n);
        await audit(trx, ref, 'critical_call.escalated', null, { reason, attempts });
        const notice = await writeNotice(
          trx,
          {
            idempotencyKey: `critical-call-escalation:${ref.workflowId}`,
            kind: 'critical_call.escalated',
            priority: 'urgent',
            subjectType: 'critical_call',
            subjectId: ref.workflowId,
            facts: { accession: ref.accession, test: ref.test, reason, attempts },
            link: link(ref),
            recipients: await resolveRecipients(trx, [{ kind: 'role', role: 'lab_director' }]),
          },
          mailDomain,
        );
        return { noticeIds: notice.needsRun ? [notice.noticeId] : [], outboxIds: notice.outboxIds };
      });
    },

    /**
     * What the call's run adopts when told its record moved: the state PostgreSQL shows. A call withdrawn after its
     * attempts reached someone (REACHED_NO_READBACK: a clinician may have heard a value that no longer stands) or after
     * the lab director was called in is followed by a notice, written once: urgent to whoever logged an attempt that
     * reached someone and to the lab directors when someone was reached; normal to the lab directors when the call had
     * only escalated. The notice names the accession, the test and why, never the value; the lab tells the person
     * reached (labflow does not call clinicians). Answers the notice to run and the outbox to deliver.
     */
    async criticalCallWithdrawal(p: { ref: CallRef }): Promise<{ state: CriticalCallStateName; noticeIds: string[]; outboxIds: string[] }> {
      const { ref } = p;
      return db.transaction(async (trx) => {
        const call = await trx('critical_calls').where({ id: ref.callId, workflow_id: ref.workflowId }).first();
        if (!call || Context.current().info.workflowExecution?.workflowId !== ref.workflowId) {
          throw refused(FailureType.NotFound, `${ref.workflowId} is not this run's call`);
        }
        if (call.state !== 'withdrawn') return { state: call.state, noticeIds: [], outboxIds: [] };
        const reachedBy: string[] = await trx('critical_call_attempts')
          .where({ call_id: call.id, outcome: 'REACHED_NO_READBACK' })
          .distinct('called_by')
          .pluck('called_by');
        const escalated = call.escalated_at !== null;
        if (!reachedBy.length && !escalated) return { state: 'withdrawn', noticeIds: [], outboxIds: [] };
        const reason = call.withdrawal_reason as WithdrawalReason;
        const notice = await writeNotice(
          trx,
          {
            idempotencyKey: `critical-call-withdrawn:${ref.workflowId}`,
            kind: 'critical_call.withdrawn',
            priority: reachedBy.length ? 'urgent' : 'normal',
            subjectType: 'critical_call',
            subjectId: ref.workflowId,
            facts: { accession: ref.accession, test: ref.test, reason, reached: reachedBy.length > 0, escalated },
            link: link(ref),
            recipients: await resolveRecipients(trx, [
              ...reachedBy.map((userId) => ({ kind: 'user' as const, userId, username: userId })),
              { kind: 'role', role: 'lab_director' },
            ]),
          },
          mailDomain,
        );
        return { state: 'withdrawn', noticeIds: notice.needsRun ? [notice.noticeId] : [], outboxIds: notice.outboxIds };
      });
    },
  };
}
