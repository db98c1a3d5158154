import assert from 'node:assert/strict';
import { ActivityFailure, ApplicationFailure, RetryState, TimeoutFailure, TimeoutType } from '@temporalio/common';
import type { Actor } from '../../common/roles';
import type { ReviewSummaryArgs, SummaryState } from '../../common/soap-summary';
import { failureOutcome } from '../../workflows/soap-summary/summarizers';
import { validateReview, type ReviewContext } from '../../workflows/soap-summary/validators';

const clinician: Actor = { userId: 'u1', username: 'doc', printedName: 'Dr Doc', roles: ['clinician'] };
const signature = (contentHash: string) => ({ meaning: 'approval', contentHash, signedAt: '2026-12-01T10:00:00Z' });
const grant = 'g'.repeat(43);

function awaitingReview(overrides: Partial<ReviewContext> = {}): ReviewContext {
  const state = { stage: 'ready', summaryId: 'S1', contentHash: 'h1' } as SummaryState;
  return { state, reviewing: false, supersededBy: null, ...overrides };
}

/** The failure type a refusal carries, or 'accepted'. */
function verdict(ctx: ReviewContext, review: Partial<ReviewSummaryArgs>): string {
  try {
    validateReview(ctx, { actor: clinician, grant, decision: 'approve', summaryId: 'S1', signature: signature('h1'), ...review });
    return 'accepted';
  } catch (err) {
    assert.ok(err instanceof ApplicationFailure && err.nonRetryable, String(err));
    return err.type ?? 'untyped';
  }
}

describe('what a summary review may not do', () => {
  it('accepts a signed approval of the summary awaiting review, an edit naming its text, and a commented rejection', () => {
    assert.equal(verdict(awaitingReview(), {}), 'accepted');
    assert.equal(verdict(awaitingReview(), { decision: 'edit', signature: signature('h2'), editId: 'E1' }), 'accepted');
    assert.equal(verdict(awaitingReview(), { decision: 'reject', signature: undefined, commentId: 'C1' }), 'accepted');
  });

  it('refuses a review without proof from the API: a null or malformed actor, no grant or a malformed one', () => {
    assert.equal(verdict(awaitingReview(), { actor: null as never }), 'GrantRefused');
    assert.equal(verdict(awaitingReview(), { actor: { userId: 'u1' } as never }), 'GrantRefused');
    assert.equal(verdict(awaitingReview(), { grant: undefined as never }), 'GrantRefused');
    assert.equal(verdict(awaitingReview(), { grant: 'trust-me' }), 'GrantRefused');
  });

  it('refuses anyone but a clinician', () => {
    assert.equal(verdict(awaitingReview(), { actor: { ...clinician, roles: ['admin'] } }), 'Forbidden');
  });

  it('refuses a second review while one is being recorded, and any review outside the ready stage', () => {
    assert.equal(verdict(awaitingReview({ reviewing: true }), {}), 'DuplicateDecision');
    for (const stage of ['generating', 'approved', 'superseded'] as const) {
      assert.equal(verdict(awaitingReview({ state: { ...awaitingReview().state, stage } }), {}), 'WrongStage', stage);
    }
    assert.equal(verdict(awaitingReview({ supersededBy: { reason: 'notes_changed' } }), {}), 'WrongStage');
  });

  it('refuses a review of another summary, or an approval signed over other content', () => {
    assert.equal(verdict(awaitingReview(), { summaryId: 'S0' }), 'StaleContentHash');
    assert.equal(verdict(awaitingReview(), { signature: signature('old') }), 'StaleContentHash');
  });

  it('refuses an unsigned approval or edit, an edit without its text, and a rejection without a comment', () => {
    assert.equal(verdict(awaitingReview(), { signature: undefined }), 'InvalidInput');
    assert.equal(verdict(awaitingReview(), { decision: 'edit', signature: undefined, editId: 'E1' }), 'InvalidInput');
    assert.equal(verdict(awaitingReview(), { decision: 'edit', signature: signature('h2') }), 'InvalidInput');
    assert.equal(verdict(awaitingReview(), { decision: 'reject', signature: undefined }), 'InvalidInput');
  });
});

describe("how a summarizer's failure is named in the run", () => {
  const ended = (cause: Error) =>
    new ActivityFailure('failed', 'summarizeWithAnthropic', '1', RetryState.MAXIMUM_ATTEMPTS_REACHED, undefined, cause);

  it("by the activity's failure type, a timeout as LlmTimeout, anything else as LlmFailed", () => {
    assert.equal(failureOutcome(ended(ApplicationFailure.create({ type: 'LlmTruncated', message: 'cut' }))), 'LlmTruncated');
    assert.equal(failureOutcome(ended(new TimeoutFailure('timed out', undefined, TimeoutType.START_TO_CLOSE))), 'LlmTimeout');
    assert.equal(failureOutcome(ended(ApplicationFailure.create({ message: 'no type' }))), 'LlmFailed');
    assert.equal(failureOutcome(new Error('not an activity failure')), 'LlmFailed');
  });
});
