import {
  ActivityFailure,
  ApplicationFailure,
  condition,
  continueAsNew,
  getExternalWorkflowHandle,
  patched,
  upsertSearchAttributes,
  workflowInfo,
} from '@temporalio/workflow';
import type { DocRef } from '../../activities';
import { assigneeKey, type AssigneeRef } from '../../common/assignees';
import type { DeactivatedUser } from '../../common/deactivation';
import {
  FINAL_VERSION_STATES,
  supersededSignal,
  type DecideArgs,
  type DocumentApprovalInput,
  type DocumentApprovalState,
  type ExtendArgs,
  type ObsoleteArgs,
  type PeriodicReviewArgs,
  type ReassignArgs,
  type RevisionArgs,
  type Slot,
  type StageStatus,
  type SupersededArgs,
  type WithdrawArgs,
} from '../../common/document-approval';
import { FailureType, refuse } from '../../common/failures';
import type { Actor } from '../../common/roles';
import { openSlotFor } from '../../common/routing-rules';
import { Assignees, DueAt, EntityId, EntityType, Stage } from '../../common/search-attributes';
import { trainingIds } from '../../common/training';
import { PRECHECK_PATCH, precheckWorkflowId } from '../../common/document-precheck';
import { startOrJoinChild } from '../lib/children';
import type { documentPrecheckWorkflow } from '../document-precheck';
import { OutboxDeliveries } from '../lib/outbox';
import type { trainingCampaignWorkflow } from '../training-campaign';
import { db } from '../lib/proxies';
import { iso } from '../lib/time';
import { nextPeriodicReviewAt, stageClock, untilEffectiveMs, untilPeriodicReviewMs } from './deadlines';
import { awaited, decisionStageIndex, decisiveDecision, initialState, resetForNewRound, stageDueAt } from './stages';
import { runReviewStage, type StageHost, type SubmissionProof } from './review-stage';
import { grantRefusal, undoneIfRefused } from '../lib/proof';
import type { ApprovalFacts } from './validators';

type ReviewOutcome = 'approved' | 'rejected' | 'withdrawn';

const DOCUMENT_CONTROL: AssigneeRef = { kind: 'role', role: 'document_control' };
const QA_MANAGERS: AssigneeRef = { kind: 'role', role: 'qa_manager' };

/**
 * One version of a controlled document, from submission to its end: review stages with electronic signatures,
 * revision rounds, the wait for the effective date, periodic reviews while effective, and its retirement. The
 * Update handlers record a request and wake the process; the process carries it out in order.
 */
export class DocumentApprovalCase implements ApprovalFacts, StageHost {
  readonly state: DocumentApprovalState;
  readonly doc: DocRef;
  private reviewCycle: number;
  private withdrawal: WithdrawArgs | null = null;
  private obsoletion: ObsoleteArgs | null = null;
  private supersession: SupersededArgs | null = null;
  private revision: RevisionArgs | null = null;
  /** The author was deactivated: their revisions rest with document control (see handOverFrom). */
  private authorDeactivated = false;
  private dueDateExtensions = 0;
  private submissionChecked = false;
  private precheckStarted = false;
  private reviewChanges = 0;
  /** Decisions accepted but not yet recorded, per stage: a stage closes only once its own are written. */
  private readonly recording: number[];
  private readonly deliveries = new OutboxDeliveries();

  constructor(
    private readonly input: DocumentApprovalInput,
    private readonly workflowId: string,
  ) {
    this.doc = {
      workflowId,
      documentId: input.documentId,
      documentNumber: input.documentNumber,
      versionId: input.versionId,
      version: input.version,
      title: input.title,
      authorId: input.author.userId,
    };
    this.state = input.resume?.snapshot ?? initialState(input, workflowId);
    this.reviewCycle = input.resume?.reviewCycle ?? 0;
    this.recording = input.routing.map(() => 0);
  }

  get authorId(): string {
    return this.input.author.userId;
  }
  get withdrawing(): boolean {
    return this.withdrawal !== null;
  }
  get revising(): boolean {
    return this.revision !== null;
  }
  get revisionsHandedOver(): boolean {
    return this.authorDeactivated;
  }
  get reminderBefore(): string {
    return this.input.reminderBefore;
  }
  get extensions(): number {
    return this.dueDateExtensions;
  }
  decisionsInFlight(stageIndex: number): number {
    return this.recording[stageIndex];
  }
  /**
   * A run proves its submission where it first records anything: the first stage of its first round consumes the
   * grant the API wrote, so a run started straight through Temporal fails before it touches the record. Runs
   * started before grants existed opened their first stage without one.
   */
  submissionProof(stageIndex: number): SubmissionProof | undefined {
    if (stageIndex !== 0 || this.state.round !== 1 || this.submissionChecked) return undefined;
    this.submissionChecked = true;
    if (!patched('action-grants')) return undefined;
    const { versionId, contentHash, routing, reminderBefore, periodicReview, effectiveDate, submittedBy, submissionGrant } = this.input;
    return {
      grant: submissionGrant,
      submittedBy,
      args: { versionId, contentHash, routing, reminderBefore, periodicReview, effectiveDate },
    };
  }
  /**
   * The advisory compliance pre-check of the submitted version starts once the first stage of the first round is
   * open (the submission proven): a run of its own, abandoned, never awaited, so whatever it finds or however it
   * ends, this run's state and signatures are untouched. Runs submitted before the pre-check existed start none.
   */
  async stageOpened(stageIndex: number): Promise<void> {
    if (stageIndex !== 0 || this.state.round !== 1 || this.precheckStarted) return;
    this.precheckStarted = true;
    if (!patched(PRECHECK_PATCH)) return;
    const { documentId, documentNumber, versionId, version } = this.input;
    await startOrJoinChild<typeof documentPrecheckWorkflow>('documentPrecheckWorkflow', {
      workflowId: precheckWorkflowId(documentNumber, version),
      args: [{ documentId, documentNumber, versionId, version }],
    });
  }
  deliver(outboxIds: string[]): void {
    this.deliveries.deliver(outboxIds);
  }
  get resumed(): boolean {
    return this.input.resume !== undefined;
  }
  private get finished(): boolean {
    return FINAL_VERSION_STATES.includes(this.state.state);
  }

  /** Recomputes who is awaited and what is due, and shows it in the run's search attributes. */
  publish(): void {
    Object.assign(this.state, awaited(this.state, this.input.author.username));
    this.upsertSearchAttributes(this.state);
  }

  private upsertSearchAttributes({ state, pendingAssignees, dueAt }: DocumentApprovalState): void {
    upsertSearchAttributes([
      { key: EntityType, value: 'document' },
      { key: EntityId, value: this.input.documentNumber },
      { key: Stage, value: state },
      { key: Assignees, value: pendingAssignees.length ? pendingAssignees : null },
      { key: DueAt, value: dueAt ? new Date(dueAt) : null },
    ]);
  }

  // Review rounds: stages open in order; each waits for its decisions, reminding and escalating on its clock.

  async decide({ actor, grant, decision, comment, signature }: DecideArgs): Promise<DocumentApprovalState> {
    const stageIndex = decisionStageIndex(this.state);
    const stage = this.state.stages[stageIndex];
    const slot = openSlotFor(stage, actor);
    if (!slot) refuse(FailureType.NotAssignee, `${actor.username} is not an assignee of stage "${stage.name}"`);
    // Taken synchronously, before any await, so a concurrent decision cannot claim the same slot.
    slot.decision = {
      kind: decision,
      userId: actor.userId,
      username: actor.username,
      printedName: actor.printedName,
      at: signature?.signedAt ?? iso(Date.now()),
      comment,
      meaning: signature?.meaning,
    };
    this.recording[stageIndex] += 1;
    try {
      await condition(() => (this.state.currentStage === stageIndex && stage.status === 'active') || this.withdrawing);
      if (this.withdrawing) return this.state;
      const record = () =>
        recordedUnlessDuplicate(
          db.recordDecision({
            doc: this.doc,
            round: this.state.round,
            stageIndex,
            stageName: stage.name,
            slotKey: assigneeKey(slot.assignee),
            actor,
            grant,
            decision,
            comment,
            signature,
          }),
          () => delete slot.decision,
        );
      // A refused decision frees its slot: the stage waits for a decision that labflow authenticated.
      const recorded = await undoneIfRefused(record, () => delete slot.decision);
      // The run shows the signer as Postgres knows them, not as the request named them (runs recorded before
      // grants have no signer in the result).
      if (recorded.signer && slot.decision) Object.assign(slot.decision, recorded.signer);
    } finally {
      this.recording[stageIndex] -= 1;
    }
    this.publish();
    return this.state;
  }

  async reassign({ actor, grant, from, to, reason }: ReassignArgs): Promise<DocumentApprovalState> {
    const stageIndex = this.currentStageIndex();
    const stage = this.state.stages[stageIndex];
    const slot = stage.slots.find((candidate) => !candidate.decision && assigneeKey(candidate.assignee) === from);
    if (!slot) refuse(FailureType.InvalidInput, `${from} holds no undecided slot in stage "${stage.name}"`);
    const previous = slot.assignee;
    slot.assignee = to;
    this.publish();
    const record = () =>
      db.reassignStage({
        doc: this.doc,
        round: this.state.round,
        stageIndex,
        stageName: stage.name,
        from: previous,
        to,
        dueAt: stageDueAt(stage),
        actor,
        grant,
        reason,
      });
    const outboxIds = await undoneIfRefused(record, () => {
      slot.assignee = previous;
      this.publish();
    });
    this.deliver(outboxIds);
    return this.state;
  }

  /**
   * A deactivated user's undecided slots, in the stage under way and in the stages still to come, go to document
   * control as a role (to QA managers where document control already holds a slot of that stage), who decide or
   * reassign them by name. The recording step believes the notice only if Postgres shows the user inactive; a
   * notice it refuses changes nothing.
   */
  async handOverFrom(user: DeactivatedUser): Promise<void> {
    if (this.finished) return;
    if (user.userId === this.authorId) await this.handOverRevisionsFrom(user);
    const held = (slot: Slot) => !slot.decision && slot.assignee.kind === 'user' && slot.assignee.userId === user.userId;
    const moves = this.state.stages.flatMap((stage, stageIndex) => {
      if (!stage.slots.some(held) || (this.state.currentStage !== null && stageIndex < this.state.currentStage)) return [];
      const taken = (ref: AssigneeRef) => stage.slots.some((slot) => assigneeKey(slot.assignee) === assigneeKey(ref));
      const to: AssigneeRef = taken(DOCUMENT_CONTROL) ? QA_MANAGERS : DOCUMENT_CONTROL;
      return [{ stageIndex, stageName: stage.name, to }];
    });
    if (!moves.length) return;
    const current = this.state.currentStage;
    try {
      const outboxIds = await db.handOverSlotsOfDeactivated({
        doc: this.doc,
        round: this.state.round,
        user,
        moves,
        current,
        dueAt: current === null ? null : stageDueAt(this.state.stages[current]),
      });
      this.deliver(outboxIds);
    } catch (err) {
      if (!grantRefusal(err)) throw err;
      return;
    }
    for (const move of moves) {
      for (const slot of this.state.stages[move.stageIndex].slots.filter(held)) slot.assignee = move.to;
    }
    this.publish();
  }

  /**
   * A deactivated author's revisions go to document control: the open revision task, and every revision the run
   * may yet request, which document control may then upload. Believed only when Postgres shows the user inactive.
   */
  private async handOverRevisionsFrom(user: DeactivatedUser): Promise<void> {
    if (this.authorDeactivated) return;
    try {
      this.deliver(await db.handOverRevisionsOfDeactivated({ doc: this.doc, round: this.state.round, user }));
    } catch (err) {
      if (!grantRefusal(err)) throw err;
      return;
    }
    this.authorDeactivated = true;
  }

  async extendDue({ actor, grant, dueAt, reason }: ExtendArgs): Promise<DocumentApprovalState> {
    const stageIndex = this.currentStageIndex();
    const stage = this.state.stages[stageIndex];
    const fromDueAt = stageDueAt(stage);
    const before = { dueAt: stage.dueAt, reminded: stage.reminded, escalated: stage.escalated };
    Object.assign(stage, stageClock(Date.now(), Date.parse(dueAt), this.input.reminderBefore));
    this.dueDateExtensions += 1;
    this.publish();
    const record = () =>
      db.extendStageDue({
        doc: this.doc,
        round: this.state.round,
        stageIndex,
        stageName: stage.name,
        fromDueAt,
        dueAt: stageDueAt(stage),
        actor,
        grant,
        reason,
      });
    await undoneIfRefused(record, () => {
      Object.assign(stage, before);
      // The stage's clock is read again, now back at the date it had.
      this.dueDateExtensions += 1;
      this.publish();
    });
    return this.state;
  }

  private currentStageIndex(): number {
    if (this.state.currentStage === null) refuse(FailureType.WrongStage, 'no review stage is waiting for decisions right now');
    return this.state.currentStage;
  }

  /** Reviews the version, stage by stage and round by round, until it is approved, rejected or withdrawn. */
  async review(): Promise<ReviewOutcome> {
    for (;;) {
      let outcome: StageStatus = 'approved';
      for (let i = 0; i < this.state.stages.length && outcome === 'approved'; i++) outcome = await runReviewStage(this, i);
      const decisive = decisiveDecision(this.state.currentStage === null ? undefined : this.state.stages[this.state.currentStage]);
      this.state.currentStage = null;
      if (this.withdrawing) return 'withdrawn';
      if (outcome === 'approved') return 'approved';
      this.state.outcome = decisive ? { by: decisive.username, comment: decisive.comment ?? '' } : null;
      if (outcome === 'rejected') return 'rejected';
      if (!decisive) throw new Error('changes were requested without a decision requesting them');
      if ((await this.awaitRevision(decisive)) === 'withdrawn') return 'withdrawn';
    }
  }

  // Revision: the author revises the text after a change request, and the next round reviews it from the start.

  async uploadRevision(revision: RevisionArgs): Promise<DocumentApprovalState> {
    const round = this.state.round;
    const actor = await this.accepted('document.upload_revision', revision, { contentHash: revision.contentHash });
    this.revision = { ...revision, actor };
    await condition(() => this.state.round > round || this.finished);
    return this.state;
  }

  private async awaitRevision(requestedBy: { username: string; printedName: string; comment?: string }): Promise<'revised' | 'withdrawn'> {
    const requestRevision = async () =>
      this.deliver(
        await db.requestRevision({
          doc: this.doc,
          round: this.state.round,
          by: { username: requestedBy.username, printedName: requestedBy.printedName },
          comment: requestedBy.comment ?? '',
        }),
      );
    // The author may act once their revision task exists; runs started before this rule announced the state first.
    if (patched('changes-requested-after-task')) {
      await requestRevision();
      this.state.state = 'changes_requested';
      this.publish();
    } else {
      this.state.state = 'changes_requested';
      this.publish();
      await requestRevision();
    }
    await condition(() => this.revision !== null || this.withdrawing);
    const revision = this.revision;
    if (this.withdrawing || !revision) return 'withdrawn';
    await db.applyRevision({ doc: this.doc, round: this.state.round + 1, contentHash: revision.contentHash, actor: revision.actor });
    this.state.round += 1;
    this.state.contentHash = revision.contentHash;
    this.state.outcome = null;
    this.state.state = 'in_review';
    resetForNewRound(this.state.stages);
    this.revision = null;
    return 'revised';
  }

  // Approved: the version waits for its effective date, then supersedes the version that was effective.

  async approve(): Promise<void> {
    this.deliver(await db.closeVersion({ doc: this.doc, state: 'approved' }));
    this.state.state = 'approved';
    this.publish();
  }

  /** Waits for the effective date; false when the version was withdrawn meanwhile. */
  async awaitEffectiveDate(): Promise<boolean> {
    const waitMs = untilEffectiveMs(this.state.effectiveDate, Date.now());
    if (waitMs > 0) await condition(() => this.withdrawing, waitMs);
    return !this.withdrawing;
  }

  async makeEffective(): Promise<void> {
    const nextReviewAt = nextPeriodicReviewAt(Date.now(), this.input.periodicReview);
    const { supersededWorkflowId, outboxIds } = await db.makeEffective({ doc: this.doc, nextReviewAt });
    this.deliver(outboxIds);
    this.state.state = 'effective';
    this.state.effectiveAt = iso(Date.now());
    this.state.nextPeriodicReviewAt = nextReviewAt;
    this.publish();
    if (supersededWorkflowId && supersededWorkflowId !== this.workflowId) {
      try {
        await getExternalWorkflowHandle(supersededWorkflowId).signal(supersededSignal, {
          byWorkflowId: this.workflowId,
          byVersion: this.input.version,
        });
      } catch {
        // The superseded version's run has already ended; Postgres already records the supersession.
      }
    }
    // Runs that became effective before training existed asked nobody to read the version.
    if (patched('training-campaign')) await this.startTrainingCampaign();
  }

  /** The campaign that asks everyone the document's training requirement names to read this version. */
  private async startTrainingCampaign(): Promise<void> {
    const { documentId, documentNumber, versionId, version, title } = this.input;
    await startOrJoinChild<typeof trainingCampaignWorkflow>('trainingCampaignWorkflow', {
      workflowId: trainingIds.campaign(documentNumber, version),
      args: [{ documentId, documentNumber, versionId, version, title }],
    });
  }

  // Effective: periodic reviews until a newer version supersedes this one or document control retires it.

  async completePeriodicReview({ actor, grant, comment }: PeriodicReviewArgs): Promise<DocumentApprovalState> {
    const nextReviewAt = nextPeriodicReviewAt(Date.now(), this.input.periodicReview);
    const record = () => db.completePeriodicReview({ doc: this.doc, cycle: this.reviewCycle, actor, grant, comment, nextReviewAt });
    await undoneIfRefused(record, () => undefined);
    this.state.periodicReviewOpen = false;
    this.state.nextPeriodicReviewAt = nextReviewAt;
    this.reviewChanges += 1;
    this.publish();
    return this.state;
  }

  /** Runs the effective version until it ends (superseded or obsolete); continues as new when history grows. */
  async whileEffective(): Promise<DocumentApprovalState> {
    for (;;) {
      const seen = this.reviewChanges;
      const wake = () => this.supersession !== null || this.obsoletion !== null || this.reviewChanges !== seen;
      const woke = this.state.periodicReviewOpen
        ? (await condition(wake), true)
        : await condition(wake, untilPeriodicReviewMs(this.nextReviewAt(), Date.now()));
      if (this.supersession) {
        const closed = await this.closeSuperseded(this.supersession);
        if (closed) return closed;
        continue;
      }
      if (this.obsoletion) return this.close('obsolete', this.obsoletion.actor, this.obsoletion.reason);
      if (!woke) await this.openPeriodicReview();
      if (workflowInfo().continueAsNewSuggested) {
        await this.settled();
        await continueAsNew<(input: DocumentApprovalInput) => Promise<DocumentApprovalState>>({
          ...this.input,
          resume: { snapshot: this.state, reviewCycle: this.reviewCycle },
        });
      }
    }
  }

  /**
   * The run says a periodic review is open only once document control's task for it exists, so the run and the
   * task list never disagree. The search attributes announce it as it opens, as they always have.
   */
  private async openPeriodicReview(): Promise<void> {
    this.reviewCycle += 1;
    const opening = { ...this.state, periodicReviewOpen: true };
    this.upsertSearchAttributes({ ...opening, ...awaited(opening, this.input.author.username) });
    const outboxIds = await db.openPeriodicReview({ doc: this.doc, cycle: this.reviewCycle, dueAt: this.nextReviewAt() });
    this.deliver(outboxIds);
    this.state.periodicReviewOpen = true;
    Object.assign(this.state, awaited(this.state, this.input.author.username));
  }

  private nextReviewAt(): string {
    if (!this.state.nextPeriodicReviewAt) throw new Error('an effective version has a next periodic review date');
    return this.state.nextPeriodicReviewAt;
  }

  // Endings: withdrawn, rejected, obsolete or superseded; and the record left consistent when an operator cancels.

  async withdraw(withdrawal: WithdrawArgs): Promise<DocumentApprovalState> {
    const actor = await this.accepted('document.withdraw', withdrawal, { reason: withdrawal.reason });
    this.withdrawal = { ...withdrawal, actor };
    await condition(() => this.state.state === 'withdrawn');
    return this.state;
  }

  async obsolete(obsoletion: ObsoleteArgs): Promise<DocumentApprovalState> {
    const actor = await this.accepted('document.obsolete', obsoletion, { reason: obsoletion.reason });
    this.obsoletion = { ...obsoletion, actor };
    await condition(() => this.state.state === 'obsolete');
    return this.state;
  }

  supersede(by: SupersededArgs): void {
    this.supersession = by;
  }

  /**
   * A request the run carries out later, in its own order (a withdrawal, a retirement, a revision), has its grant
   * consumed as it is accepted, before anything acts on it; the later record names the actor this answers. Runs
   * that accepted such requests before grants existed took them as they came.
   */
  private async accepted(
    action: 'document.withdraw' | 'document.obsolete' | 'document.upload_revision',
    { actor, grant }: { actor: Actor; grant: string },
    args: { reason: string } | { contentHash: string },
  ): Promise<Actor> {
    if (!patched('action-grants')) return actor;
    return undoneIfRefused(
      () => db.acceptRequest({ doc: this.doc, action, actor, grant, args }),
      () => undefined,
    );
  }

  async closeWithdrawn(): Promise<DocumentApprovalState> {
    if (!this.withdrawal) throw new Error('closing as withdrawn without a withdrawal');
    return this.close('withdrawn', this.withdrawal.actor, this.withdrawal.reason);
  }

  async closeRejected(): Promise<DocumentApprovalState> {
    this.deliver(await db.closeVersion({ doc: this.doc, state: 'rejected', comment: this.state.outcome?.comment }));
    this.state.state = 'rejected';
    this.publish();
    return this.settled();
  }

  private async close(state: 'withdrawn' | 'obsolete', by: Actor, comment: string): Promise<DocumentApprovalState> {
    this.deliver(await db.closeVersion({ doc: this.doc, state, by, comment }));
    this.state.state = state;
    this.state.outcome = { by: by.username, comment };
    this.publish();
    return this.settled();
  }

  /** Null when Postgres does not record the supersession: the signal was not labflow's, and the run goes on. */
  private async closeSuperseded(by: SupersededArgs): Promise<DocumentApprovalState | null> {
    try {
      await db.closeOpenTasks({ doc: this.doc, reason: `superseded by v${by.byVersion}`, supersededBy: by });
    } catch (err) {
      if (!grantRefusal(err)) throw err;
      this.supersession = null;
      return null;
    }
    this.state.state = 'superseded';
    this.publish();
    return this.settled();
  }

  /** Run in a non-cancellable scope after an operator cancelled the run. */
  async closeAfterCancellation(): Promise<void> {
    const reason = 'the run was cancelled by an administrator';
    if (['in_review', 'changes_requested', 'approved'].includes(this.state.state)) {
      this.deliver(await db.closeVersion({ doc: this.doc, state: 'withdrawn', comment: reason }));
      this.state.state = 'withdrawn';
    } else {
      await db.closeOpenTasks({ doc: this.doc, reason });
    }
    this.publish();
    await this.deliveries.drained();
  }

  /** The run ends (or continues as new) only after its handlers have answered and its emails are delivered. */
  private async settled(): Promise<DocumentApprovalState> {
    await this.deliveries.quiet();
    return this.state;
  }
}

/**
 * The recording step refuses a decision by someone who already decided another stage of the round (one person
 * signs at most one stage per round), having written nothing: the run frees the slot and the caller hears why.
 */
async function recordedUnlessDuplicate<T>(recording: Promise<T>, undo: () => void): Promise<T> {
  try {
    return await recording;
  } catch (err) {
    if (err instanceof ActivityFailure && err.cause instanceof ApplicationFailure && err.cause.type === FailureType.DuplicateDecision) {
      undo();
      refuse(FailureType.DuplicateDecision, err.cause.message);
    }
    throw err;
  }
}
