import { condition } from '@temporalio/workflow';
import type { DocRef } from '../../activities';
import type { DocumentApprovalState, StageStatus } from '../../common/document-approval';
import { resolveStage } from '../../common/routing-rules';
import { db } from '../lib/proxies';
import { nextStageAlarm, openedStageClock } from './deadlines';
import { stageDueAt } from './stages';

/** What a review stage needs of the run it belongs to. */
export interface StageHost {
  readonly state: DocumentApprovalState;
  readonly doc: DocRef;
  readonly reminderBefore: string;
  readonly withdrawing: boolean;
  /** Counts due-date extensions, so a waiting stage re-reads its clock when one arrives. */
  readonly extensions: number;
  /** Decisions accepted for the stage whose records are still being written. */
  decisionsInFlight(stageIndex: number): number;
  deliver(outboxIds: string[]): void;
  publish(): void;
  /** The submission's proof, for the run's first stage only (and only in runs that check it). */
  submissionProof(stageIndex: number): SubmissionProof | undefined;
  /** Work that follows the stage's opening (and, for the first stage, the submission's proof) without waiting on it. */
  stageOpened?(stageIndex: number): Promise<void>;
}

export interface SubmissionProof {
  grant?: string;
  submittedBy: string;
  args: {
    versionId: string;
    contentHash: string;
    routing: unknown;
    reminderBefore: string;
    periodicReview: string;
    effectiveDate?: string;
  };
}

/**
 * Opens one review stage, waits for its decisions while reminding before the due date and escalating after it,
 * and closes it once every accepted decision is recorded. An overdue stage waits for people: the clock never
 * decides it.
 */
export async function runReviewStage(run: StageHost, stageIndex: number): Promise<StageStatus> {
  const { state, doc, reminderBefore } = run;
  const stage = state.stages[stageIndex];
  Object.assign(stage, openedStageClock(Date.now(), stage.due, reminderBefore));
  state.currentStage = stageIndex;
  run.publish();
  const outboxIds = await db.openReviewStage({
    doc,
    round: state.round,
    stageIndex,
    stageName: stage.name,
    assignees: stage.slots.map((slot) => slot.assignee),
    dueAt: stageDueAt(stage),
    submission: run.submissionProof(stageIndex),
  });
  run.deliver(outboxIds);
  await run.stageOpened?.(stageIndex);
  // Decisions are accepted once the stage's tasks exist, so nobody acts on a stage their inbox does not show.
  stage.status = 'active';
  run.publish();

  await waitForDecisions(run, stageIndex);
  stage.status = run.withdrawing ? 'cancelled' : resolveStage(stage);
  await db.closeReviewStage({ doc, round: state.round, stageIndex, stageName: stage.name, outcome: stage.status });
  return stage.status;
}

/**
 * Waits until the stage is decided and every accepted decision is recorded. A decision whose grant the recording
 * step refused frees its slot again, so the stage goes back to waiting rather than closing on it.
 */
async function waitForDecisions(run: StageHost, stageIndex: number): Promise<void> {
  const stage = run.state.stages[stageIndex];
  do {
    await remindUntilDecided(run, stageIndex);
    await condition(() => run.decisionsInFlight(stageIndex) === 0);
  } while (resolveStage(stage) === 'active' && !run.withdrawing);
}

/** Reminds before the due date and escalates after it until the stage's slots decide it (or it is withdrawn). */
async function remindUntilDecided(run: StageHost, stageIndex: number): Promise<void> {
  const { state, doc, reminderBefore } = run;
  const stage = state.stages[stageIndex];
  while (resolveStage(stage) === 'active' && !run.withdrawing) {
    const alarm = nextStageAlarm(
      { dueAt: stageDueAt(stage), reminded: stage.reminded, escalated: stage.escalated },
      reminderBefore,
      Date.now(),
    );
    if (alarm.kind === 'wait') {
      const seen = run.extensions;
      const wake = () => resolveStage(stage) !== 'active' || run.withdrawing || run.extensions !== seen;
      if (alarm.wakeInMs === null) await condition(wake);
      else await condition(wake, alarm.wakeInMs);
      continue;
    }
    stage.reminded = true;
    if (alarm.kind === 'escalation') stage.escalated = true;
    const pending = stage.slots.filter((slot) => !slot.decision).map((slot) => slot.assignee);
    run.deliver(
      await db.remindStage({ doc, round: state.round, stageName: stage.name, pending, dueAt: stageDueAt(stage), kind: alarm.kind }),
    );
  }
}
