import { assigneeKey } from '../../common/assignees';
import {
  FINAL_VERSION_STATES,
  type DecideArgs,
  type DocumentApprovalState,
  type ExtendArgs,
  type ObsoleteArgs,
  type PeriodicReviewArgs,
  type ReassignArgs,
  type RevisionArgs,
  type VersionState,
  type WithdrawArgs,
} from '../../common/document-approval';
import { FailureType, refuse } from '../../common/failures';
import type { Actor } from '../../common/roles';
import { hasDecided, openSlotFor } from '../../common/routing-rules';
import { requireRole, requireState, requireText } from '../lib/guards';
import { requireProof } from '../lib/proof';
import { activeStage, decisionStageIndex, stageDueAt } from './stages';

/** What the validators read of a run: its state and the requests it has accepted but not yet carried out. */
export interface ApprovalFacts {
  readonly state: DocumentApprovalState;
  readonly authorId: string;
  readonly withdrawing: boolean;
  readonly revising: boolean;
  /** The author was deactivated: document control may upload the revisions. */
  readonly revisionsHandedOver: boolean;
}

function requireVersionState(facts: ApprovalFacts, ...allowed: VersionState[]): void {
  const { documentNumber, version, state } = facts.state;
  requireState(`${documentNumber} v${version}`, state, allowed, FINAL_VERSION_STATES);
}

const requireDocumentControl = (actor: Actor) => requireRole(actor, ['document_control'], { what: 'document control may do this' });

export function validateDecision(facts: ApprovalFacts, args: DecideArgs): void {
  requireProof(args);
  const { actor, decision, comment, signature } = args;
  requireVersionState(facts, 'in_review');
  if (facts.withdrawing) refuse(FailureType.WrongStage, 'the version is being withdrawn');
  const stage = facts.state.stages[decisionStageIndex(facts.state)];
  if (actor.userId === facts.authorId) refuse(FailureType.Forbidden, 'the author cannot review or approve their own version');
  if (hasDecided(stage, actor.userId))
    refuse(FailureType.DuplicateDecision, `${actor.username} has already decided in stage "${stage.name}"`);
  // Every stage of the run belongs to the current round (a new round clears the decisions).
  const signedElsewhere = facts.state.stages.find((other) => other !== stage && hasDecided(other, actor.userId));
  if (signedElsewhere) {
    refuse(
      FailureType.DuplicateDecision,
      `${actor.username} already decided stage "${signedElsewhere.name}" in round ${facts.state.round}; one person signs at most one stage per round`,
    );
  }
  if (!openSlotFor(stage, actor)) refuse(FailureType.NotAssignee, `${actor.username} is not an assignee of stage "${stage.name}"`);
  if (decision === 'approve') {
    if (!signature) refuse(FailureType.InvalidInput, 'an approval must be signed');
    if (signature.contentHash !== facts.state.contentHash) {
      refuse(FailureType.StaleContentHash, `the content changed since it was read: current hash is ${facts.state.contentHash}`);
    }
  } else {
    requireText(comment, 'a comment');
  }
}

export function validateWithdrawal(facts: ApprovalFacts, args: WithdrawArgs): void {
  requireProof(args);
  const { actor, reason } = args;
  requireVersionState(facts, 'in_review', 'changes_requested', 'approved');
  if (actor.userId !== facts.authorId && !actor.roles.includes('document_control')) {
    refuse(FailureType.Forbidden, 'only the author or document control may withdraw a version');
  }
  requireText(reason, 'a reason');
}

export function validateReassignment(facts: ApprovalFacts, args: ReassignArgs): void {
  requireProof(args);
  const { actor, from, to, reason } = args;
  requireVersionState(facts, 'in_review');
  requireDocumentControl(actor);
  requireText(reason, 'a reason');
  const stage = activeStage(facts.state);
  if (!stage.slots.some((slot) => !slot.decision && assigneeKey(slot.assignee) === from)) {
    refuse(FailureType.InvalidInput, `${from} holds no undecided slot in stage "${stage.name}"`);
  }
  if (to.kind === 'user' && to.userId === facts.authorId) refuse(FailureType.InvalidInput, 'the author cannot review their own version');
  if (stage.slots.some((slot) => assigneeKey(slot.assignee) === assigneeKey(to))) {
    refuse(FailureType.InvalidInput, `${assigneeKey(to)} is already an assignee of stage "${stage.name}"`);
  }
}

/** `nowMs` is the workflow's clock: the new date must lie ahead of the current one and of now. */
export function validateExtension(facts: ApprovalFacts, args: ExtendArgs, nowMs: number): void {
  requireProof(args);
  const { actor, dueAt, reason } = args;
  requireVersionState(facts, 'in_review');
  requireDocumentControl(actor);
  requireText(reason, 'a reason');
  const current = stageDueAt(activeStage(facts.state));
  const next = Date.parse(dueAt);
  if (Number.isNaN(next)) refuse(FailureType.InvalidInput, 'dueAt must be an ISO date-time');
  if (next <= Date.parse(current) || next <= nowMs) {
    refuse(FailureType.InvalidInput, `the new due date must be later than the current one (${current}) and in the future`);
  }
}

export function validateRevision(facts: ApprovalFacts, args: RevisionArgs): void {
  requireProof(args);
  const { actor, contentHash } = args;
  requireVersionState(facts, 'changes_requested');
  if (facts.revising) refuse(FailureType.DuplicateDecision, 'a revision is already being applied');
  const handedOver = facts.revisionsHandedOver && actor.roles.includes('document_control');
  if (actor.userId !== facts.authorId && !handedOver)
    refuse(FailureType.Forbidden, 'only the author may upload a revision (document control, once the author was deactivated)');
  if (contentHash === facts.state.contentHash)
    refuse(FailureType.InvalidInput, 'the revision has the same content as the version under review');
}

export function validateObsoletion(facts: ApprovalFacts, args: ObsoleteArgs): void {
  requireProof(args);
  const { actor, reason } = args;
  requireVersionState(facts, 'effective');
  requireDocumentControl(actor);
  requireText(reason, 'a reason');
}

export function validatePeriodicReview(facts: ApprovalFacts, args: PeriodicReviewArgs): void {
  requireProof(args);
  const { actor, comment } = args;
  requireVersionState(facts, 'effective');
  if (!facts.state.periodicReviewOpen) refuse(FailureType.WrongStage, 'no periodic review is open');
  requireDocumentControl(actor);
  requireText(comment, 'a comment');
}
