import { CancellationScope, isCancellation, patched, upsertSearchAttributes } from '@temporalio/workflow';
import type { SummaryAttemptResult } from '../../activities/soap-summary';
import type { DeactivatedUser } from '../../common/deactivation';
import {
  FINAL_SUMMARY_STAGES,
  type ReviewSummaryArgs,
  type Summarizer,
  type SummaryInput,
  type SummaryStage,
  type SummaryState,
  type SupersedeArgs,
} from '../../common/soap-summary';
import { Assignees, EntityId, EntityType, Stage } from '../../common/search-attributes';
import { db } from '../lib';
import { grantRefusal, undoneIfRefused } from '../lib/proof';
import { failureOutcome, type SummarizerCall } from './summarizers';

/**
 * One summary job: its state, the revision its Postgres projection must reach, and the moves between stages
 * (open, generate, review, end). Every stage move is upserted as a search attribute where it happens.
 */
export class SummaryCase {
  readonly state: SummaryState;
  /** The revision of the Postgres projection: each stage move is one more, so a late write never wins. */
  private rev = 0;
  supersededBy: SupersedeArgs | null = null;
  reviewing = false;
  /** Decided by a rejection before the stage moves: the main loop wakes on the move and reads it. */
  regenerate = false;
  private roundsUsed = 1;
  /** The care team (assignee keys) a deactivated requester's review was handed to; null while the requester holds it. */
  private reviewers: string[] | null = null;
  private generation: CancellationScope | null = null;

  constructor(
    private readonly input: SummaryInput,
    private readonly callers: Record<Summarizer, SummarizerCall>,
    workflowId: string,
  ) {
    this.state = {
      workflowId,
      patientId: input.patientId,
      notesHash: input.notesHash,
      stage: 'requested',
      round: 1,
      providers: input.providers,
      attempts: [],
      provider: null,
      model: null,
      aiGenerated: null,
      summaryId: null,
      contentHash: null,
      reviews: [],
      endedBecause: null,
    };
  }

  private get workflowId(): string {
    return this.state.workflowId;
  }

  /** Records the job; one whose notes changed before it started is superseded at once. */
  async open(): Promise<void> {
    upsertSearchAttributes([
      { key: EntityType, value: 'soap-summary' },
      { key: EntityId, value: this.input.patientId },
    ]);
    const opened = await db.openSummaryJob({
      workflowId: this.workflowId,
      patientId: this.input.patientId,
      notesHash: this.input.notesHash,
      requestedBy: this.input.requestedBy,
      providers: this.state.providers,
      rev: this.rev + 1,
    });
    this.state.round = opened.round;
    // The job is recorded as generating already when its notes are current.
    if (opened.notesCurrent) this.advance('generating');
    else this.supersededBy = { reason: 'notes_changed' };
  }

  /**
   * The notes changed: the first notice counts, and a generation under way stops. A notice is believed only once
   * Postgres bears it out (the job's notes are no longer the patient's notes): one it does not is refused by the
   * activity as a security event, and the run goes on. Runs that heard notices before this check took them as
   * they came.
   */
  async supersede(args: SupersedeArgs): Promise<void> {
    if (this.supersededBy) return;
    if (patched('soap-supersession-proof')) {
      try {
        await db.confirmSummarySupersession({ workflowId: this.workflowId, reason: args.reason, by: args.by ?? null });
      } catch (err) {
        if (!grantRefusal(err)) throw err;
        return;
      }
      if (this.supersededBy) return;
    }
    this.supersededBy = args;
    this.generation?.cancel();
  }

  /** One round of generation; false when every summarizer failed. A superseded round ends quietly (false). */
  async generateRound(): Promise<boolean> {
    this.state.summaryId = null;
    this.state.contentHash = null;
    try {
      this.generation = new CancellationScope();
      return await this.generation.run(() => this.generate());
    } catch (err) {
      if (!(isCancellation(err) && this.supersededBy)) throw err;
      return false;
    } finally {
      this.generation = null;
    }
  }

  /** Asks each summarizer in turn; returns false when every one failed. */
  private async generate(): Promise<boolean> {
    const s = this.state;
    for (const provider of s.providers) {
      let maxTokens = this.input.attempt.maxTokens;
      for (let widened = false; ;) {
        if (s.stage !== 'generating') await this.moveTo('generating');
        let result: SummaryAttemptResult;
        try {
          result = await this.callers[provider]({ workflowId: this.workflowId, round: s.round, maxTokens });
        } catch (err) {
          if (isCancellation(err)) throw err;
          const outcome = failureOutcome(err);
          s.attempts.push({ round: s.round, provider, outcome, maxTokens });
          if (outcome === 'LlmTruncated' && !widened) {
            widened = true;
            maxTokens *= 2;
            continue;
          }
          break;
        }
        const verdict = await db.validateSummaryCandidate({ attemptId: result.attemptId, rev: this.advance('validating') });
        s.attempts.push({ round: s.round, provider, outcome: verdict.ok ? 'succeeded' : 'validation_failed', maxTokens });
        if (!verdict.ok) break;
        // The summary and its 'ready' projection are one transaction; the run moves to ready once it is stored.
        const stored = await db.storeSummary({
          workflowId: this.workflowId,
          round: s.round,
          attemptId: result.attemptId,
          rev: this.rev + 1,
        });
        Object.assign(s, {
          provider,
          model: result.model,
          aiGenerated: provider !== 'extractive',
          summaryId: stored.summaryId,
          contentHash: stored.contentHash,
        });
        return true;
      }
    }
    return false;
  }

  /** The summary awaits a clinician's review: the requester's, or the care team's once it was handed over. */
  async awaitReview(): Promise<void> {
    this.advance('ready');
    // Only runs told of their requester's deactivation (a signal no earlier history holds) take this step: no patch.
    if (this.reviewers) await this.openReviewTasks();
  }

  /**
   * The requester was deactivated: their review goes to the patient's care team (any active clinician of the team
   * may review, as before), who get review tasks while a summary awaits review and are the run's Assignees. The
   * recording step believes the notice only when Postgres shows the user inactive and as this job's requester; a
   * notice it refuses changes nothing.
   */
  async handOverFrom(user: DeactivatedUser): Promise<void> {
    // A job that ended (or is ending: reviewed with no new round) holds nothing of the requester's.
    const ended = this.state.endedBecause !== null || (FINAL_SUMMARY_STAGES.includes(this.state.stage) && !this.regenerate);
    if (user.userId !== this.input.requestedBy.userId || this.reviewers || ended) return;
    const round = this.state.round;
    const awaitingReview = this.state.stage === 'ready';
    try {
      const handed = await db.handOverSummaryReviewOfDeactivated({ workflowId: this.workflowId, round, user, awaitingReview });
      this.reviewers = handed.reviewers;
    } catch (err) {
      if (!grantRefusal(err)) throw err;
      return;
    }
    if (this.state.stage !== 'ready') return;
    // A summary that came ready, or a round that began, while the hand-over was recorded gets its tasks now.
    if (!awaitingReview || this.state.round !== round) await this.openReviewTasks();
    else this.showAssignees();
  }

  private async openReviewTasks(): Promise<void> {
    const opened = await db.openHandedOverReviewTasks({ workflowId: this.workflowId, round: this.state.round });
    this.reviewers = opened.reviewers;
    this.showAssignees();
  }

  get reviewed(): boolean {
    return this.state.stage !== 'ready';
  }

  /** Records a clinician's decision (signed approval or edit, or a rejection that may ask for a new round). */
  async review(review: ReviewSummaryArgs): Promise<SummaryState> {
    const s = this.state;
    this.reviewing = true;
    try {
      const record = () =>
        db.recordSummaryReview({
          workflowId: this.workflowId,
          patientId: s.patientId,
          round: s.round,
          summaryId: review.summaryId,
          actor: review.actor,
          grant: review.grant,
          decision: review.decision,
          signature: review.signature,
          editId: review.editId,
          commentId: review.commentId,
          regenerate: review.regenerate,
        });
      // A refused review took nothing but the in-flight flag, which `finally` gives back: the summary awaits review.
      const result = await undoneIfRefused(record, () => undefined);
      // The reviewer as Postgres knows them (reviews recorded before grants answered no reviewer).
      s.reviews.push({ decision: review.decision, by: result.reviewer ?? review.actor.username, at: result.reviewedAt });
      if (review.decision === 'edit') s.contentHash = result.contentHash;
      this.regenerate = review.decision === 'reject' && review.regenerate !== false && this.roundsUsed < this.input.maxRounds;
      await this.moveTo(review.decision === 'approve' ? 'approved' : review.decision === 'edit' ? 'edited' : 'rejected');
      return s;
    } finally {
      this.reviewing = false;
    }
  }

  /** A rejected summary is generated again, as the next round. */
  nextRound(): void {
    this.regenerate = false;
    this.roundsUsed += 1;
    this.state.round += 1;
  }

  async end(stage: SummaryStage, reason: string): Promise<void> {
    this.state.endedBecause = reason;
    // Recorded first, then shown: whoever sees the run ended finds its summary marked too.
    await CancellationScope.nonCancellable(() =>
      db.endSummaryJob({
        workflowId: this.workflowId,
        rev: this.rev + 1,
        round: this.state.round,
        stage,
        reason,
        supersededBy: this.supersededBy?.by ?? null,
      }),
    );
    this.advance(stage);
  }

  /** The stage moves in the run and its search attributes; returns the revision the Postgres projection must reach. */
  private advance(stage: SummaryStage): number {
    this.state.stage = stage;
    this.rev += 1;
    upsertSearchAttributes([{ key: Stage, value: stage }, this.assignees()]);
    return this.rev;
  }

  /** Who the run waits on: the requester, or the care team their review was handed to, while a summary is ready. */
  private assignees() {
    const waitingOn = this.state.stage !== 'ready' ? [] : (this.reviewers ?? [`user:${this.input.requestedBy.username}`]);
    return { key: Assignees, value: waitingOn.length ? waitingOn : null };
  }

  private showAssignees(): void {
    if (this.state.stage === 'ready') upsertSearchAttributes([this.assignees()]);
  }

  /** A stage change with nothing else to write; the steps that write anyway project their stage themselves. */
  private async moveTo(stage: SummaryStage): Promise<void> {
    const at = this.advance(stage);
    await db.projectSummaryJob({ workflowId: this.workflowId, rev: at, stage, round: this.state.round, provider: this.state.provider });
  }
}
