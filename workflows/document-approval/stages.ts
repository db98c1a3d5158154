import type { Decision, DocumentApprovalInput, DocumentApprovalState, StageState } from '../../common/document-approval';
import { FailureType, refuse } from '../../common/failures';
import { pendingAssigneeKeys, resolveStage } from '../../common/routing-rules';

const NOTHING_TO_DECIDE = 'no review stage is waiting for decisions right now';

/** The stage the run is in, or undefined between rounds and after review. */
export function currentStage(state: DocumentApprovalState): StageState | undefined {
  return state.currentStage === null ? undefined : state.stages[state.currentStage];
}

/** The current stage while it waits for decisions; refused otherwise (reassigning, extending). */
export function activeStage(state: DocumentApprovalState): StageState {
  const stage = currentStage(state);
  if (!stage || stage.status !== 'active' || resolveStage(stage) !== 'active') refuse(FailureType.WrongStage, NOTHING_TO_DECIDE);
  return stage;
}

/**
 * The stage a decision made now belongs to: the current one while it waits for decisions (or is being opened),
 * or the next one when the current stage has just been approved. A decision for a stage that is still opening
 * is held until its tasks exist rather than refused.
 */
export function decisionStageIndex(state: DocumentApprovalState): number {
  const i = state.currentStage;
  if (i === null) refuse(FailureType.WrongStage, NOTHING_TO_DECIDE);
  const outcome = resolveStage(state.stages[i]);
  if (outcome === 'active' && state.stages[i].status !== 'cancelled') return i;
  if (outcome === 'approved' && i + 1 < state.stages.length) return i + 1;
  refuse(FailureType.WrongStage, NOTHING_TO_DECIDE);
}

/** The decision that ended a round other than by approval (a rejection or a change request), if any. */
export function decisiveDecision(stage: StageState | undefined): Decision | undefined {
  return stage?.slots.find((slot) => slot.decision && slot.decision.kind !== 'approve')?.decision;
}

/** A new round reviews the revised text from the first stage, every decision cleared. */
export function resetForNewRound(stages: StageState[]): void {
  for (const stage of stages) {
    stage.status = 'pending';
    stage.slots.forEach((slot) => delete slot.decision);
  }
}

/** The due date of a stage that has been opened (opening sets it). */
export function stageDueAt(stage: StageState): string {
  if (!stage.dueAt) throw new Error(`stage "${stage.name}" has not been opened`);
  return stage.dueAt;
}

/** Who the run waits for and what falls due next, as the run's state and its search attributes show them. */
export function awaited(state: DocumentApprovalState, authorUsername: string): Pick<DocumentApprovalState, 'pendingAssignees' | 'dueAt'> {
  const stage = currentStage(state);
  const pendingAssignees =
    state.state === 'in_review' && stage
      ? pendingAssigneeKeys(stage)
      : state.state === 'changes_requested'
        ? [`user:${authorUsername}`]
        : state.periodicReviewOpen
          ? ['role:document_control']
          : [];
  const dueAt =
    state.state === 'in_review'
      ? (stage?.dueAt ?? null)
      : state.state === 'approved'
        ? state.effectiveDate
        : state.state === 'effective'
          ? state.nextPeriodicReviewAt
          : null;
  return { pendingAssignees, dueAt };
}

/** The state of a run that starts with the first review round. */
export function initialState(input: DocumentApprovalInput, workflowId: string): DocumentApprovalState {
  return {
    workflowId,
    documentNumber: input.documentNumber,
    version: input.version,
    state: 'in_review',
    round: 1,
    contentHash: input.contentHash,
    currentStage: null,
    stages: input.routing.map((stage) => ({
      name: stage.name,
      rule: stage.rule,
      due: stage.due,
      status: 'pending',
      slots: stage.assignees.map((assignee) => ({ assignee })),
      reminded: false,
      escalated: false,
    })),
    dueAt: null,
    pendingAssignees: [],
    effectiveDate: input.effectiveDate ?? null,
    effectiveAt: null,
    nextPeriodicReviewAt: null,
    periodicReviewOpen: false,
    outcome: null,
  };
}
