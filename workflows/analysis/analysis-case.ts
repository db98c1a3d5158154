import { getExternalWorkflowHandle, patched, upsertSearchAttributes } from '@temporalio/workflow';
import type { AnalysisRef, AnalysisStep } from '../../activities/results';
import { workflowIds } from '../../common/ids';
import type {
  AnalysisAction,
  AnalysisInput,
  AnalysisState,
  AnalysisStateName,
  EnterResultArgs,
  ReasonArgs,
  ReleaseArgs,
  RetestArgs,
  SubmitArgs,
  VerifyArgs,
} from '../../common/results';
import { FINAL_ANALYSIS_STATES } from '../../common/results';
import { sampleTestsChangedSignal, type ReportInput } from '../../common/reports';
import { Assignees, EntityId, EntityType, Stage } from '../../common/search-attributes';
import { db, startOrJoinChild } from '../lib';
import { refuseAsRecorded } from '../lib/proof';
import { autoverify } from './autoverification';
import { callIfCritical, tellCallWithdrawn } from './critical-call';

/** Runs recorded after this patch start the sample's report when their verification completes the set. */
export const REPORT_WHEN_VERIFIED_PATCH = 'report-when-all-verified';
/** Runs recorded after this patch tell the sample's run when they end, so the sample can complete. */
export const TELL_SAMPLE_PATCH = 'tell-sample-when-ended';
/** Runs recorded after this patch start the sample's report when the rule set's verification completes the set. */
export const REPORT_WHEN_AUTOVERIFIED_PATCH = 'report-when-autoverified';
/** Runs recorded after this patch submit a result an instrument reported as soon as it is entered. */
export const INSTRUMENT_SUBMIT_PATCH = 'instrument-submit';

type Request = { actor: unknown; grant: string; signature?: VerifyArgs['signature'] };

/**
 * One analysis from routing to its end. Each person's action is taken in turn: judged again against the state
 * it meets, recorded by one activity that checks its proof, and only then applied to the state, so a refused
 * proof changes nothing. The run holds IDs only; the values are in Postgres.
 */
export class AnalysisCase {
  readonly state: AnalysisState;
  private ref: AnalysisRef | null = null;
  private last: Promise<unknown> = Promise.resolve();
  /** The critical-value call this run last started or joined (its ID), told when the analysis ends without it. */
  private call: string | null = null;

  constructor(
    private readonly input: AnalysisInput,
    workflowId: string,
  ) {
    this.state = {
      workflowId,
      accession: input.accession,
      test: input.test,
      retestNumber: input.retestNumber,
      retestOf: input.retestOf,
      state: 'pending',
      policy: null,
      entryId: null,
      enteredBy: [],
      verifiedBy: [],
      retestedBy: null,
      frozen: false,
    };
  }

  get isDone(): boolean {
    return this.state.frozen || FINAL_ANALYSIS_STATES.includes(this.state.state);
  }

  async open(): Promise<void> {
    this.publish();
    const { analysisId, policy } = await db.openAnalysis({ workflowId: this.state.workflowId, input: this.input });
    this.ref = {
      workflowId: this.state.workflowId,
      analysisId,
      accession: this.input.accession,
      test: this.input.test,
      retestNumber: this.input.retestNumber,
    };
    this.state.policy = policy;
  }

  /** Whether the analysis is verified now (read after a step that may have moved it). */
  private verifiedNow(): boolean {
    return this.state.state === 'verified';
  }

  /** Runs an action after the one before it, judged again against the state it then meets. */
  inTurn(judge: () => void, work: () => Promise<void>): Promise<void> {
    const next = this.last.then(async () => {
      judge();
      await work();
    });
    this.last = next.catch(() => undefined);
    return next;
  }

  private record(
    action: AnalysisAction,
    to: AnalysisStateName,
    request: Request,
    extra: Partial<AnalysisStep> & Record<string, unknown> = {},
  ) {
    const ref = this.ref;
    if (!ref) throw new Error('the analysis is not open yet');
    return db
      .recordAnalysisStep({
        ref,
        from: this.state.state,
        to,
        proof: { action, grant: request.grant, actor: request.actor, request, signature: request.signature },
        ...extra,
      })
      // A refusal by the recording step (an unproven action, a state Postgres no longer shows, the gate) refuses the Update.
      .catch(refuseAsRecorded);
  }

  async enter(args: EnterResultArgs): Promise<void> {
    const { actor, criticalCall, reported, withdrawnCall, supersededCalls } = await this.record('analysis.enter', 'resulted', args, { entryId: args.entryId });
    const s = this.state;
    s.state = 'resulted';
    s.entryId = args.entryId;
    if (!s.enteredBy.includes(actor.userId)) s.enteredBy.push(actor.userId);
    this.publish();
    await callIfCritical(this.ref, criticalCall);
    if (criticalCall) this.call = criticalCall;
    // The value is no longer critical: the recording step withdrew the open call, and its run is told.
    if (withdrawnCall) await this.tellCall(withdrawnCall);
    // A retest's result withdrew the calls still open on the value it retests (present only in runs recorded since).
    for (const call of supersededCalls ?? []) await tellCallWithdrawn(call);
    if (reported && patched(INSTRUMENT_SUBMIT_PATCH)) await this.submitReported(args.entryId);
  }

  /**
   * A result an instrument reported (Postgres says so, not the caller) is submitted by the instrument path at once,
   * so the test's rule set judges it without waiting for a person; the submitter on record is the instrument and
   * its performer. A step that finds the entry no longer current and `resulted` submits nothing.
   */
  private async submitReported(entryId: string): Promise<void> {
    const ref = this.ref;
    if (!ref) return;
    const { submitted } = await db.submitReportedResult({ ref, entryId });
    if (!submitted) return;
    this.state.state = 'to_be_verified';
    this.state.submittedBy = 'instrument';
    this.publish();
    await autoverify(ref, this.state, () => this.publish());
    if (this.verifiedNow()) await this.reportIfDue();
  }

  async submit(args: SubmitArgs): Promise<void> {
    await this.record('analysis.submit', 'to_be_verified', args);
    this.state.state = 'to_be_verified';
    this.publish();
    if (this.ref) await autoverify(this.ref, this.state, () => this.publish());
    if (this.verifiedNow() && patched(REPORT_WHEN_AUTOVERIFIED_PATCH)) await this.reportIfDue();
  }

  async verify(args: VerifyArgs): Promise<void> {
    const required = this.state.policy?.verificationsRequired ?? 1;
    const { actor, verifications } = await this.record('analysis.verify', 'verified', args, { verificationsRequired: required });
    this.state.verifiedBy.push(actor.userId);
    if ((verifications ?? 0) >= required) this.state.state = 'verified';
    this.publish();
    if (this.state.state === 'verified') await this.reportIfDue();
  }

  async release(args: ReleaseArgs): Promise<void> {
    await this.record('analysis.release', 'released', args);
    this.state.state = 'released';
    this.publish();
  }

  async end(action: 'analysis.retract' | 'analysis.reject' | 'analysis.cancel', to: AnalysisStateName, args: ReasonArgs): Promise<void> {
    const { withdrawnCall, supersededCalls } = await this.record(action, to, args, { reason: args.reason });
    this.state.state = to;
    this.publish();
    if (withdrawnCall) await this.tellCall(withdrawnCall);
    for (const call of supersededCalls ?? []) await tellCallWithdrawn(call);
    await this.reportIfDue();
  }

  /** Tells a call's run that its analysis's recording step withdrew it (IDs only; the call reads the record). */
  private async tellCall(callWorkflowId: string): Promise<void> {
    if (await tellCallWithdrawn(callWorkflowId)) this.call = null;
  }

  /**
   * Adopts what Postgres shows when the record moved without this run: released by the sample's report, or
   * cancelled with its rejected specimen. The signal that asks is only a prompt; the record is the authority.
   */
  async followRecord(): Promise<void> {
    if (!this.ref || this.isDone) return;
    const recorded = await db.analysisRecordedState({ analysisId: this.ref.analysisId });
    if (recorded.frozen || !['released', 'cancelled'].includes(recorded.state) || recorded.state === this.state.state) return;
    this.state.state = recorded.state as AnalysisStateName;
    this.publish();
    // A cancellation with the rejected specimen withdrew the open call in the same transaction: its run is told.
    if (recorded.state === 'cancelled' && this.call) await this.tellCall(this.call);
    if (recorded.state === 'cancelled') await this.reportIfDue();
  }

  /** When this analysis completes the sample's set of verified (or ended) tests, starts the sample's first report. */
  private async reportIfDue(): Promise<void> {
    if (!patched(REPORT_WHEN_VERIFIED_PATCH)) return;
    const { sampleId, accession } = this.input;
    const { workflowId } = await db.reportDue({ sampleId, accession });
    if (!workflowId) return;
    const args: ReportInput = { sampleId, accession, version: 1, corrects: null };
    await startOrJoinChild('reportWorkflow', { workflowId, args: [args] });
  }

  /** Tells the sample's run that this analysis ended (a run already ended is not told). */
  async tellSample(): Promise<void> {
    if (!patched(TELL_SAMPLE_PATCH)) return;
    await getExternalWorkflowHandle(workflowIds.sampleIntake(this.input.accession))
      .signal(sampleTestsChangedSignal)
      .catch(() => undefined);
  }

  /** Freezes this analysis as it stands and starts the retest its recording step opened, linked to it. */
  async retest(args: RetestArgs): Promise<void> {
    const { retestWorkflowId } = await this.record('analysis.retest', this.state.state, args);
    const workflowId = retestWorkflowId ?? workflowIds.analysis(this.input.accession, this.input.test, this.input.retestNumber + 1);
    this.state.frozen = true;
    this.state.retestedBy = workflowId;
    this.publish();
    await startOrJoinChild('analysisWorkflow', {
      workflowId,
      args: [{ ...this.input, retestNumber: this.input.retestNumber + 1, retestOf: this.state.workflowId }],
    });
  }

  /** Waits until every action in turn has been recorded. */
  settled(): Promise<unknown> {
    return this.last;
  }

  private publish(): void {
    const s = this.state;
    const waitingOn =
      s.frozen || FINAL_ANALYSIS_STATES.includes(s.state) ? [] : s.state === 'verified' ? ['role:lab_director'] : ['role:lab_technician'];
    upsertSearchAttributes([
      { key: EntityType, value: 'analysis' },
      { key: EntityId, value: `${s.accession}:${s.test}` },
      { key: Stage, value: s.frozen ? 'retested' : s.state },
      { key: Assignees, value: waitingOn.length ? waitingOn : null },
    ]);
  }
}
