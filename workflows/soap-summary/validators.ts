import { FailureType, refuse } from '../../common/failures';
import type { ReviewSummaryArgs, SummaryState, SupersedeArgs } from '../../common/soap-summary';
import { requireProof } from '../lib/proof';

/** What the review Update is judged against: the run's state and whether anything else is under way. */
export interface ReviewContext {
  state: Readonly<SummaryState>;
  reviewing: boolean;
  supersededBy: SupersedeArgs | null;
}

/**
 * Refuses a review that may not be recorded now: no proof from labflow's API (a null or malformed actor, no grant),
 * wrong role, wrong stage, stale summary, or a missing signature. Care-team membership needs Postgres: the
 * recording activity checks it, with the grant, on the user as Postgres knows them.
 */
export function validateReview({ state, reviewing, supersededBy }: ReviewContext, review: ReviewSummaryArgs): void {
  requireProof(review);
  if (!review.actor.roles.includes('clinician')) refuse(FailureType.Forbidden, 'only a clinician reviews a summary');
  if (reviewing) refuse(FailureType.DuplicateDecision, 'another review of this summary is being recorded');
  if (state.stage !== 'ready') refuse(FailureType.WrongStage, `the summary is ${state.stage.replace(/_/g, ' ')}, not awaiting review`);
  if (supersededBy) refuse(FailureType.WrongStage, 'the notes changed; this summary is superseded');
  if (review.summaryId !== state.summaryId) refuse(FailureType.StaleContentHash, 'that is not the summary awaiting review');
  if (review.decision === 'reject') {
    if (!review.commentId) refuse(FailureType.InvalidInput, 'a rejection needs a comment');
    return;
  }
  if (!review.signature) refuse(FailureType.InvalidInput, `to ${review.decision} a summary is an electronic signature`);
  if (review.decision === 'approve' && review.signature.contentHash !== state.contentHash) {
    refuse(FailureType.StaleContentHash, 'the signed content hash is not the summary awaiting review');
  }
  if (review.decision === 'edit' && !review.editId) refuse(FailureType.InvalidInput, 'an edit names the edited text');
}
