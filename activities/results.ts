import { ApplicationFailure, Context } from '@temporalio/activity';
import type { Knex } from 'knex';
import { DEFAULT_CRITICAL_CALL_SETTINGS, isCriticalFlag, type WithdrawalReason } from '../common/critical-calls';
import { FailureType } from '../common/failures';
import { workflowIds } from '../common/ids';
import {
  boundAnalysisArgs,
  mayAnalysisAction,
  type AnalysisAction,
  type AnalysisInput,
  type AnalysisStateName,
  type VerificationPolicy,
} from '../common/results';
import type { Actor } from '../common/roles';
import type { SignatureInput } from '../common/signatures';
import { appendAudit } from '../db/audit';
import { callForCriticalEntry, lockCallsOfAnalysisChain, withdrawCallsOfRetested, withdrawOpenCall } from '../db/critical-calls';
import { instrumentUsability, unusableWhy } from '../db/equipment';
import { RESULT_VERIFICATION } from '../db/gate';
import { policyOf } from '../db/results';
import { recordSignature } from '../db/signatures';
import type { ActivityDeps } from './deps';
import { activityKey } from './keys';
import { grantChecks, Refusal, type ActionProof, type RecordRef } from './lib/grant-checks';
import { gateInTransaction } from './training';
import { judgeEntry } from './result-rules';

/** An analysis as its run names it: IDs only. */
export interface AnalysisRef {
  workflowId: string;
  analysisId: string;
  accession: string;
  test: string;
  retestNumber: number;
}

export type AnalysisProof = ActionProof<AnalysisAction>;

/** One step of an analysis: from the state the run is in to the state the action leads to. */
export interface AnalysisStep {
  ref: AnalysisRef;
  from: AnalysisStateName;
  to: AnalysisStateName;
  proof: AnalysisProof;
}

/**
 * A result on a registered instrument needs it usable at the moment it is recorded (PostgreSQL's clock), unless it
 * is a QC run: the instrument's row is read under a share lock, so a step taking it out of service waits or is seen.
 */
async function requireUsableInstrument(trx: Knex.Transaction, entry: { instrument: string | null; qc_run: boolean }): Promise<void> {
  if (!entry.instrument || entry.qc_run) return;
  await trx('instruments').where({ code: entry.instrument }).forShare().first('id');
  const usability = await instrumentUsability(trx, entry.instrument);
  if (usability && !usability.usable) {
    throw ApplicationFailure.create({
      type: FailureType.InstrumentNotUsable,
      message: `instrument ${entry.instrument} is not usable: ${unusableWhy(usability)}`,
      nonRetryable: true,
    });
  }
}

const notFound = (message: string) => ApplicationFailure.create({ type: FailureType.NotFound, message, nonRetryable: true });
const invalid = (message: string) => ApplicationFailure.create({ type: FailureType.InvalidInput, message, nonRetryable: true });

/** The ends of an analysis that withdraw its open critical-value call. */
const WITHDRAWING_ENDS: Partial<Record<AnalysisStateName, WithdrawalReason>> = { retracted: 'retracted', rejected: 'rejected', cancelled: 'cancelled' };

export function resultActivities(deps: ActivityDeps) {
  const { db, publicUrl } = deps;
  const checks = grantChecks(deps);
  const requireGate = gateInTransaction(deps);
  const criticalCallSettings = deps.criticalCalls ?? DEFAULT_CRITICAL_CALL_SETTINGS;
  const recordRef = (ref: AnalysisRef): RecordRef => ({
    workflowId: ref.workflowId,
    entityType: 'analysis',
    entityId: ref.workflowId,
    label: `${ref.test} of ${ref.accession}`,
    link: `${publicUrl}/api/v1/samples/${ref.accession}/analyses/${ref.test}`,
  });

  /** Checks the proof inside the recording transaction: the run is this analysis's, the grant holds, the role fits. */
  async function proven(trx: Knex.Transaction, ref: AnalysisRef, proof: AnalysisProof): Promise<Actor> {
    // The sample before its analysis, the order a rejection and a report's release lock them in (no deadlock between
    // a critical entry, which reads the sample's ordering provider, and those).
    await trx('samples').whereIn('id', trx('analyses').select('sample_id').where({ id: ref.analysisId })).forShare().first('id');
    await checks.ownedByRun(trx, ref, 'analyses', ref.analysisId);
    return checks.provenAction(trx, ref, proof, boundAnalysisArgs(proof.action, proof.request), mayAnalysisAction);
  }

  async function audit(trx: Knex.Transaction, ref: AnalysisRef, action: string, actor: Actor | null, details: Record<string, unknown>) {
    await appendAudit(trx, {
      actorId: actor?.userId ?? null,
      actor: actor?.username ?? 'system:results',
      action,
      entityType: 'analysis',
      entityId: ref.workflowId,
      details: { accession: ref.accession, test: ref.test, retestNumber: ref.retestNumber, ...details },
      idempotencyKey: activityKey(),
    });
  }

  async function moveState(trx: Knex.Transaction, ref: AnalysisRef, from: AnalysisStateName, fields: Record<string, unknown>) {
    const moved = await trx('analyses')
      .where({ id: ref.analysisId, state: from, frozen: false })
      .update({ ...fields, updated_at: trx.fn.now() });
    if (moved !== 1) throw invalid(`${ref.test} of ${ref.accession} is no longer ${from}`);
  }

  return {
    /**
     * Submits a result an instrument reported, as the instrument path's own step right after its entry was recorded:
     * only the run's own analysis, only while that entry is the current one and `resulted`, and only when PostgreSQL
     * shows the entry came in through the signed inbox. The submitter recorded is the instrument and its performer
     * (through the source that signed the message), never a person; answers what was recorded (IDs only). A retry
     * after a crash finds its own submission.
     */
    async submitReportedResult(p: { ref: AnalysisRef; entryId: string }): Promise<{ submitted: boolean }> {
      const { ref, entryId } = p;
      return db.transaction(async (trx) => {
        const row = await trx('analyses').where({ id: ref.analysisId }).forNoKeyUpdate().first();
        const running = Context.current().info.workflowExecution?.workflowId;
        if (!row || row.workflow_id !== ref.workflowId || running !== ref.workflowId) throw notFound(`${ref.workflowId} is not this run's analysis`);
        if (row.submitted_by?.entryId === entryId) return { submitted: true };
        const entry = await trx('analysis_entries').where({ id: entryId, analysis_id: ref.analysisId }).first();
        if (!entry?.reported_by_source || !entry.applied_at || row.current_entry_id !== entryId || row.state !== 'resulted' || row.frozen) {
          return { submitted: false };
        }
        const submittedBy = {
          by: 'instrument',
          instrument: entry.instrument ?? null,
          performedBy: entry.performed_by,
          source: entry.reported_by_source,
          messageId: entry.message_id ?? null,
          entryId,
        };
        await moveState(trx, ref, 'resulted', { state: 'to_be_verified', submitted_by: JSON.stringify(submittedBy) });
        await appendAudit(trx, {
          actorId: null,
          actor: entry.instrument ? `instrument:${entry.instrument}` : `source:${entry.reported_by_source}`,
          action: 'analysis.to_be_verified',
          entityType: 'analysis',
          entityId: ref.workflowId,
          details: { accession: ref.accession, test: ref.test, retestNumber: ref.retestNumber, submittedBy },
          idempotencyKey: activityKey(),
        });
        return { submitted: true };
      });
    },

    /**
     * Opens the analysis a routed test's run is for (or finds the one a retest step opened): the sample's routing
     * row is the proof that the test was routed. Answers its ID and the test's verification policy.
     */
    async openAnalysis(p: { workflowId: string; input: AnalysisInput }): Promise<{ analysisId: string; policy: VerificationPolicy }> {
      const { input, workflowId } = p;
      return db.transaction(async (trx) => {
        const policy = await policyOf(trx, input.test);
        if (!policy) throw notFound(`test ${input.test} has no result policy`);
        const existing = await trx('analyses').where({ workflow_id: workflowId }).first('id');
        if (existing) return { analysisId: existing.id, policy };
        if (input.retestNumber !== 1) throw notFound(`retest ${workflowId} was not opened by its original`);
        const routed = await trx('sample_routes').where({ sample_id: input.sampleId, test_code: input.test }).first('sample_id');
        const sample = await trx('samples').where({ id: input.sampleId, accession: input.accession }).first('id');
        if (!routed || !sample || workflowId !== workflowIds.analysis(input.accession, input.test)) {
          throw notFound(`${input.test} of ${input.accession} was not routed`);
        }
        const [row] = await trx('analyses')
          .insert({ workflow_id: workflowId, sample_id: input.sampleId, accession: input.accession, test_code: input.test })
          .onConflict('workflow_id')
          .merge(['updated_at'])
          .returning('id');
        await appendAudit(trx, {
          actor: 'system:results',
          action: 'analysis.opened',
          entityType: 'analysis',
          entityId: workflowId,
          details: { accession: input.accession, test: input.test },
          idempotencyKey: activityKey(),
        });
        return { analysisId: row.id, policy };
      });
    },

    /**
     * Records one person's step on an analysis, in one transaction with its proof: the value of an entry (flagged
     * against the matching reference range, whose snapshot is kept with it), a signed verification or release, a
     * reason, or a retest's new analysis. Answers the person as Postgres knows them and, for a verification, how
     * many there now are.
     */
    async recordAnalysisStep(
      step: AnalysisStep & { entryId?: string; reason?: string; verificationsRequired?: number },
    ): Promise<{
    actor: Actor;
    verifications?: number;
    retestWorkflowId?: string;
    criticalCall?: string;
    /** The critical-value call this step withdrew (the value stopped being critical): its run is to be told. */
    withdrawnCall?: string;
    /** Calls still open on the analyses this retest retests, withdrawn by its result or cancellation: their runs are to be told. */
    supersededCalls?: string[];
    reported?: boolean;
  }> {
      const { ref, from, to, proof } = step;
      return checks.recording(recordRef(ref), proof.action, async (trx) => {
        const actor = await proven(trx, ref, proof);
        // An entry or an ending may join or withdraw calls: they are locked before this step's first audit event.
        const joinsOrWithdrawsCalls = !['analysis.verify', 'analysis.release', 'analysis.retest'].includes(proof.action);
        const chain = joinsOrWithdrawsCalls ? await lockCallsOfAnalysisChain(trx, ref.analysisId) : [];
        const signed = (meaning: string) =>
          recordSignature(trx, {
            idempotencyKey: activityKey('signature'),
            entityType: 'analysis',
            entityId: ref.workflowId,
            workflowId: ref.workflowId,
            round: ref.retestNumber,
            stageIndex: 0,
            stageName: meaning,
            actor,
            signature: proof.signature as SignatureInput,
          });
        // The calls still open on the analyses this one retests, withdrawn by its result or its cancellation.
        const withdrawRetested = (reason: WithdrawalReason, cause: Record<string, unknown>) =>
          withdrawCallsOfRetested(trx, {
            retested: chain.slice(1),
            reason,
            by: actor,
            cause: { analysis: ref.workflowId, ...cause },
            auditKey: activityKey('critical-call-retested'),
          });
        switch (proof.action) {
          case 'analysis.enter': {
            const entry = await trx('analysis_entries').where({ id: step.entryId, analysis_id: ref.analysisId }).forNoKeyUpdate().first();
            if (!entry || entry.applied_at || entry.entered_by !== actor.userId) throw new Refusal('not_from_labflow', actor.userId);
            await requireUsableInstrument(trx, entry);
            const judged = entry.kind === 'numeric' ? await judgeEntry(trx, ref, entry) : null;
            await trx('analysis_entries')
              .where({ id: entry.id })
              .update({
                applied_at: trx.fn.now(),
                flag: judged?.flag ?? null,
                range_snapshot: judged?.range ? JSON.stringify(judged.range) : null,
                measuring_snapshot: judged?.measuring ? JSON.stringify(judged.measuring) : null,
                delta_check: judged?.delta ? JSON.stringify(judged.delta) : null,
              });
            await moveState(trx, ref, from, { state: to, current_entry_id: entry.id });
            await audit(trx, ref, from === 'pending' ? 'analysis.resulted' : 'analysis.edited', actor, { entryId: entry.id });
            const reported = entry.reported_by_source !== null && entry.reported_by_source !== undefined;
            // A retest's result settles its original: a call still open on the value it retests is withdrawn.
            const retested = await withdrawRetested('retested', { action: 'analysis.entered', entryId: entry.id });
            const superseded = retested.length ? { supersededCalls: retested } : {};
            // A critical value is called to the ordering provider: the run is told the call's ID, never the value. The
            // call is chosen (the open one, or a new one numbered after those in PostgreSQL) in this transaction.
            if (isCriticalFlag(judged?.flag)) {
              const analysis = await trx('analyses')
                .where({ id: ref.analysisId })
                .first('id', 'workflow_id', 'sample_id', 'accession', 'test_code', 'retest_number');
              const criticalCall = await callForCriticalEntry(trx, {
                analysis,
                entry: { id: entry.id, flag: String(judged?.flag), numeric_value: entry.numeric_value, unit: entry.unit },
                settings: criticalCallSettings,
                auditKey: activityKey('critical-call'),
              });
              return criticalCall ? { actor, reported, criticalCall, ...superseded } : { actor, reported, ...superseded };
            }
            // A value no longer critical withdraws the call still waiting for a read-back; the run tells the call's run.
            const withdrawnCall = await withdrawOpenCall(trx, {
              analysisId: ref.analysisId,
              reason: 'not_critical',
              by: actor,
              cause: { analysis: ref.workflowId, action: 'analysis.edited', entryId: entry.id },
              auditKey: activityKey('critical-call-withdrawn'),
            });
            return withdrawnCall ? { actor, reported, withdrawnCall, ...superseded } : { actor, reported, ...superseded };
          }
          case 'analysis.verify': {
            // The verifier must be fit for this test's verification, and the value must come from a usable instrument.
            await requireGate(trx, actor, { activity: RESULT_VERIFICATION, scope: ref.test }, { entityType: 'analysis', entityId: ref.workflowId });
            const current = await trx('analysis_entries as e').join('analyses as a', 'a.current_entry_id', 'e.id').where('a.id', ref.analysisId).first('e.instrument', 'e.qc_run');
            if (current) await requireUsableInstrument(trx, current);
            const seq = Number((await trx('analysis_verifications').where({ analysis_id: ref.analysisId }).count({ n: '*' }))[0].n) + 1;
            const signatureId = await signed('verification');
            await trx('analysis_verifications').insert({ analysis_id: ref.analysisId, seq, user_id: actor.userId, signature_id: signatureId });
            const done = seq >= (step.verificationsRequired ?? 1);
            await moveState(trx, ref, from, { state: done ? 'verified' : from });
            await audit(trx, ref, 'analysis.verified', actor, { verification: seq, of: step.verificationsRequired, signatureId });
            return { actor, verifications: seq };
          }
          case 'analysis.release': {
            const signatureId = await signed('release');
            await moveState(trx, ref, from, { state: to });
            await audit(trx, ref, 'analysis.released', actor, { signatureId });
            return { actor };
          }
          case 'analysis.retest': {
            const retestWorkflowId = workflowIds.analysis(ref.accession, ref.test, ref.retestNumber + 1);
            const original = await trx('analyses').where({ id: ref.analysisId }).first('sample_id');
            const [retest] = await trx('analyses')
              .insert({
                workflow_id: retestWorkflowId,
                sample_id: original.sample_id,
                accession: ref.accession,
                test_code: ref.test,
                retest_number: ref.retestNumber + 1,
                retest_of: ref.analysisId,
              })
              .returning('id');
            await moveState(trx, ref, from, { frozen: true, retested_by: retest.id });
            await audit(trx, ref, 'analysis.retest_requested', actor, { retest: retestWorkflowId });
            return { actor, retestWorkflowId };
          }
          default: {
            await moveState(trx, ref, from, { state: to, reason: step.reason ?? null });
            await audit(trx, ref, `analysis.${to}`, actor, step.reason ? { reason: step.reason } : {});
            const reason = WITHDRAWING_ENDS[to];
            if (!reason) return { actor };
            const withdrawnCall = await withdrawOpenCall(trx, {
              analysisId: ref.analysisId,
              reason,
              by: actor,
              cause: { analysis: ref.workflowId, action: proof.action },
              auditKey: activityKey('critical-call-withdrawn'),
            });
            // A retest cancelled: the test is no longer wanted, so a call still open on the value it retests goes too.
            const retested = to === 'cancelled' ? await withdrawRetested('cancelled', { action: proof.action }) : [];
            return { actor, ...(withdrawnCall ? { withdrawnCall } : {}), ...(retested.length ? { supersededCalls: retested } : {}) };
          }
        }
      });
    },
  };
}
