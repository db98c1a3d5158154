import { patched, upsertSearchAttributes } from '@temporalio/workflow';
import type { CallRef } from '../../activities/critical-calls';
import {
  CRITICAL_CALL_WITHDRAWAL_PATCH,
  isOpenCallState,
  type CriticalCallInput,
  type CriticalCallSettings,
  type CriticalCallState,
  type LogAttemptArgs,
} from '../../common/critical-calls';
import { Assignees, EntityId, EntityType, Stage } from '../../common/search-attributes';
import { db, OutboxDeliveries, refuseAsRecorded, startNoticeRuns, turnQueue } from '../lib';

/**
 * One critical value's call, from its opening until someone read the value back, or until the value stopped being
 * critical and the analysis's recording step withdrew it. Attempts are taken in turn, each recorded by one activity
 * that checks its proof before the state moves; failed attempts or the deadline call in the lab director. The run
 * holds IDs and counts only.
 */
export class CriticalCallCase {
  readonly state: CriticalCallState;
  readonly outbox = new OutboxDeliveries();
  settings: CriticalCallSettings | null = null;
  /** What was left of the record's deadline when the call opened (absent in histories recorded before it was told). */
  deadlineInMs: number | undefined;
  private ref: CallRef | null = null;
  private readonly turns = turnQueue();

  constructor(
    private readonly input: CriticalCallInput,
    workflowId: string,
  ) {
    this.state = {
      workflowId,
      accession: input.accession,
      test: input.test,
      callId: null,
      state: 'calling',
      hasOrderingProvider: false,
      attempts: 0,
      failedAttempts: 0,
      escalation: null,
      requestIds: [],
    };
  }

  /** Calling or escalated: still waiting for a read-back (not notified, not withdrawn). */
  get open(): boolean {
    return isOpenCallState(this.state.state);
  }

  async start(): Promise<void> {
    const opened = await db.openCriticalCall({ workflowId: this.state.workflowId, input: this.input });
    this.ref = { workflowId: this.state.workflowId, callId: opened.callId, accession: this.input.accession, test: this.input.test };
    this.settings = opened.settings;
    this.deadlineInMs = opened.deadlineInMs;
    this.state.callId = opened.callId;
    this.state.hasOrderingProvider = opened.hasOrderingProvider;
    this.state.state = opened.state;
    this.publish();
    if (!opened.hasOrderingProvider) await this.escalate('no_ordering_provider');
  }

  /** Runs an attempt after the one before it, judged again against the state it then meets. */
  inTurn(judge: () => void, work: () => Promise<void>): Promise<void> {
    return this.turns.run(judge, work);
  }

  async logAttempt(args: LogAttemptArgs): Promise<void> {
    const ref = this.ref;
    if (!ref || !this.settings) throw new Error('the call is not open yet');
    const recorded = await db
      .recordCriticalCallAttempt({
        ref,
        proof: { grant: args.grant, actor: args.actor, requestId: args.requestId, attemptRequestId: args.attemptRequestId, outcome: args.outcome },
        escalated: this.state.state === 'escalated',
      })
      // A refusal by the recording step (an unproven attempt, a value no longer critical) refuses the Update.
      .catch(refuseAsRecorded);
    if (recorded.duplicate) return;
    const s = this.state;
    s.requestIds.push(args.requestId);
    s.attempts = recorded.seq;
    s.failedAttempts = recorded.failedAttempts;
    if (recorded.outcome === 'CONFIRMED') {
      s.state = 'notified';
      this.publish();
      return;
    }
    this.publish();
    if (s.failedAttempts >= this.settings.maxAttempts) await this.escalate('attempts');
  }

  /** Calls in the lab director once (an urgent notice, SMS and Slack); later attempts go on as before. */
  async escalate(reason: 'attempts' | 'deadline' | 'no_ordering_provider'): Promise<void> {
    if (!this.ref || this.state.state !== 'calling') return;
    const { noticeIds, outboxIds, state } = await db.escalateCriticalCall({ ref: this.ref, reason });
    // Withdrawn before the run was told (the deadline came first): nobody is called in; the run ends withdrawn.
    if (state === 'withdrawn') return this.adoptWithdrawal();
    // Confirmed while the step waited for the row: the attempt's own turn makes the run notified.
    if (state === 'notified') return;
    this.state.state = 'escalated';
    this.state.escalation = { reason };
    this.publish();
    this.outbox.deliver(outboxIds);
    await startNoticeRuns(noticeIds);
  }

  /**
   * Told that the record may have moved (the analysis's value stopped being critical): adopts what PostgreSQL shows.
   * The signal is only a prompt; a call still open in the record goes on as before.
   */
  async followRecord(): Promise<void> {
    if (!this.ref || !this.open) return;
    await this.adoptWithdrawal();
  }

  /**
   * Ends the call withdrawn when the record says so: its deadline wait and any escalation stop, and the notice the
   * recording step decides on (someone was reached, or the lab director was called in) is delivered.
   */
  private async adoptWithdrawal(): Promise<void> {
    if (!this.ref || !patched(CRITICAL_CALL_WITHDRAWAL_PATCH)) return;
    const { state, noticeIds, outboxIds } = await db.criticalCallWithdrawal({ ref: this.ref });
    if (state !== 'withdrawn') return;
    this.state.state = 'withdrawn';
    this.publish();
    this.outbox.deliver(outboxIds);
    await startNoticeRuns(noticeIds);
  }

  settled(): Promise<unknown> {
    return this.turns.settled();
  }

  private publish(): void {
    const s = this.state;
    const waitingOn = !isOpenCallState(s.state) ? [] : s.state === 'escalated' ? ['role:lab_director'] : ['role:lab_technician'];
    upsertSearchAttributes([
      { key: EntityType, value: 'critical_call' },
      { key: EntityId, value: `${s.accession}:${s.test}` },
      { key: Stage, value: s.state },
      { key: Assignees, value: waitingOn.length ? waitingOn : null },
    ]);
  }
}
