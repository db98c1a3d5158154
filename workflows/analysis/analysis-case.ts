import { ActivityFailure, ApplicationFailure, upsertSearchAttributes } from '@temporalio/workflow';
import { refuse, type FailureType } from '../../common/failures';
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
import { Assignees, EntityId, EntityType, Stage } from '../../common/search-attributes';
import { db, startOrJoinChild } from '../lib';
import { autoverify } from './autoverification';

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
    this.ref = { workflowId: this.state.workflowId, analysisId, accession: this.input.accession, test: this.input.test, retestNumber: this.input.retestNumber };
    this.state.policy = policy;
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

  private record(action: AnalysisAction, to: AnalysisStateName, request: Request, extra: Partial<AnalysisStep> & Record<string, unknown> = {}) {
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
      .catch((err: unknown) => {
        // A refusal by the recording step (an unproven action, a state Postgres no longer shows) refuses the Update.
        if (err instanceof ActivityFailure && err.cause instanceof ApplicationFailure && err.cause.type) {
          refuse(err.cause.type as FailureType, err.cause.message);
        }
        throw err;
      });
  }

  async enter(args: EnterResultArgs): Promise<void> {
    const { actor } = await this.record('analysis.enter', 'resulted', args, { entryId: args.entryId });
    const s = this.state;
    s.state = 'resulted';
    s.entryId = args.entryId;
    if (!s.enteredBy.includes(actor.userId)) s.enteredBy.push(actor.userId);
    this.publish();
  }

  async submit(args: SubmitArgs): Promise<void> {
    await this.record('analysis.submit', 'to_be_verified', args);
    this.state.state = 'to_be_verified';
    this.publish();
    if (this.ref) await autoverify(this.ref, this.state, () => this.publish());
  }

  async verify(args: VerifyArgs): Promise<void> {
    const required = this.state.policy?.verificationsRequired ?? 1;
    const { actor, verifications } = await this.record('analysis.verify', 'verified', args, { verificationsRequired: required });
    this.state.verifiedBy.push(actor.userId);
    if ((verifications ?? 0) >= required) this.state.state = 'verified';
    this.publish();
  }

  async release(args: ReleaseArgs): Promise<void> {
    await this.record('analysis.release', 'released', args);
    this.state.state = 'released';
    this.publish();
  }

  async end(action: 'analysis.retract' | 'analysis.reject' | 'analysis.cancel', to: AnalysisStateName, args: ReasonArgs): Promise<void> {
    await this.record(action, to, args, { reason: args.reason });
    this.state.state = to;
    this.publish();
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
      s.frozen || FINAL_ANALYSIS_STATES.includes(s.state)
        ? []
        : s.state === 'verified'
          ? ['role:lab_director']
          : ['role:lab_technician'];
    upsertSearchAttributes([
      { key: EntityType, value: 'analysis' },
      { key: EntityId, value: `${s.accession}:${s.test}` },
      { key: Stage, value: s.frozen ? 'retested' : s.state },
      { key: Assignees, value: waitingOn.length ? waitingOn : null },
    ]);
  }
}
