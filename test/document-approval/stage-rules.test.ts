import assert from 'node:assert/strict';
import type { ApplicationFailure } from '@temporalio/common';
import type { DocumentApprovalInput, DocumentApprovalState } from '../../common/document-approval';
import { FailureType } from '../../common/failures';
import type { Actor, Role } from '../../common/roles';
import { awaited, decisionStageIndex, decisiveDecision, initialState, resetForNewRound } from '../../workflows/document-approval/stages';
import {
  validateDecision,
  validateExtension,
  validatePeriodicReview,
  validateReassignment,
  validateRevision,
  validateWithdrawal,
  type ApprovalFacts,
} from '../../workflows/document-approval/validators';

/** A well-formed grant ID; whether the grant exists is the recording activity's to check, not a validator's. */
const GRANT = 'g'.repeat(43);
const actor = (userId: string, roles: Role[] = ['reviewer']): Actor => ({ userId, username: userId, printedName: userId, roles });
const user = (id: string) => ({ kind: 'user' as const, userId: id, username: id });
const input: DocumentApprovalInput = {
  documentId: 'd1',
  documentNumber: 'DOC-0007',
  title: 'Pipette calibration',
  versionId: 'v1',
  version: 2,
  author: { userId: 'alice', username: 'alice' },
  contentHash: 'h1',
  routing: [
    { name: 'Technical', rule: { type: 'k_of_n', k: 2 }, assignees: [user('rita'), user('rick'), user('rob')], due: '72h' },
    { name: 'QA', rule: { type: 'any' }, assignees: [{ kind: 'role', role: 'qa_manager' }], due: '48h' },
  ],
  reminderBefore: '24h',
  periodicReview: '365d',
  submittedBy: 'alice',
};
const signed = { meaning: 'approval', contentHash: 'h1', signedAt: '2026-03-02T09:00:00.000Z' };
const decided = (userId: string, kind: 'approve' | 'reject' | 'request_changes', comment?: string) => ({
  kind,
  userId,
  username: userId,
  printedName: userId,
  at: '2026-03-02T09:00:00.000Z',
  comment,
});

function inReview(): DocumentApprovalState {
  const state = initialState(input, 'document-approval:DOC-0007:v2');
  state.currentStage = 0;
  state.stages[0].status = 'active';
  state.stages[0].dueAt = '2026-03-05T09:00:00.000Z';
  return state;
}
const facts = (state: DocumentApprovalState, extra: Partial<ApprovalFacts> = {}): ApprovalFacts => ({
  state,
  authorId: 'alice',
  withdrawing: false,
  revising: false,
  revisionsHandedOver: false,
  ...extra,
});
function refusedAs(type: string, fn: () => void): void {
  assert.throws(fn, (err: ApplicationFailure) => {
    assert.equal(err.type, type, err.message);
    return true;
  });
}

describe('document approval stage rules and refusals', () => {
  it('starts in review with every stage pending and nothing decided', () => {
    const state = initialState(input, 'wf');
    assert.equal(state.state, 'in_review');
    assert.equal(state.currentStage, null);
    assert.deepEqual(
      state.stages.map((s) => [s.status, s.slots.length]),
      [
        ['pending', 3],
        ['pending', 1],
      ],
    );
  });

  it('sends a decision to the current stage, or to the next one once the current is approved but not yet closed', () => {
    const state = inReview();
    assert.equal(decisionStageIndex(state), 0);
    state.stages[0].slots[0].decision = decided('rita', 'approve');
    state.stages[0].slots[1].decision = decided('rick', 'approve');
    assert.equal(decisionStageIndex(state), 1);
    state.currentStage = 1;
    state.stages[1].slots[0].decision = decided('quinn', 'approve');
    refusedAs(FailureType.WrongStage, () => decisionStageIndex(state));
    refusedAs(FailureType.WrongStage, () => decisionStageIndex(initialState(input, 'wf')));
  });

  it('names the rejection or change request that ended a round, and a new round clears every decision', () => {
    const state = inReview();
    state.stages[0].slots[0].decision = decided('rita', 'approve');
    state.stages[0].slots[2].decision = decided('rob', 'request_changes', 'Section 4 unclear');
    assert.equal(decisiveDecision(state.stages[0])?.username, 'rob');
    assert.equal(decisiveDecision(undefined), undefined);
    resetForNewRound(state.stages);
    assert.ok(state.stages.every((s) => s.status === 'pending' && s.slots.every((slot) => !slot.decision)));
  });

  it('shows who is awaited and what is due in each state', () => {
    const state = inReview();
    state.stages[0].slots[0].decision = decided('rita', 'approve');
    assert.deepEqual(awaited(state, 'alice'), { pendingAssignees: ['user:rick', 'user:rob'], dueAt: '2026-03-05T09:00:00.000Z' });
    state.state = 'changes_requested';
    assert.deepEqual(awaited(state, 'alice'), { pendingAssignees: ['user:alice'], dueAt: null });
    Object.assign(state, { state: 'approved', effectiveDate: '2026-04-01T00:00:00.000Z' });
    assert.deepEqual(awaited(state, 'alice'), { pendingAssignees: [], dueAt: '2026-04-01T00:00:00.000Z' });
    Object.assign(state, { state: 'effective', nextPeriodicReviewAt: '2027-04-01T00:00:00.000Z', periodicReviewOpen: true });
    assert.deepEqual(awaited(state, 'alice'), { pendingAssignees: ['role:document_control'], dueAt: '2027-04-01T00:00:00.000Z' });
    state.state = 'obsolete';
    assert.deepEqual(awaited(state, 'alice').dueAt, null);
  });

  it('refuses decisions from the author, a non-assignee, a second decision, an unsigned or stale approval', () => {
    const state = inReview();
    const decide =
      (who: Actor, extra: Record<string, unknown> = {}) =>
      () =>
        validateDecision(facts(state), { grant: GRANT, actor: who, decision: 'approve', signature: signed, ...extra });
    decide(actor('rita'))();
    refusedAs(FailureType.Forbidden, decide(actor('alice')));
    refusedAs(FailureType.NotAssignee, decide(actor('tom')));
    refusedAs(FailureType.InvalidInput, decide(actor('rita'), { signature: undefined }));
    refusedAs(FailureType.StaleContentHash, decide(actor('rita'), { signature: { ...signed, contentHash: 'h0' } }));
    refusedAs(FailureType.InvalidInput, decide(actor('rita'), { decision: 'reject', comment: '  ' }));
    state.stages[0].slots[0].decision = decided('rita', 'approve');
    refusedAs(FailureType.DuplicateDecision, decide(actor('rita')));
    refusedAs(FailureType.WrongStage, () =>
      validateDecision(facts(state, { withdrawing: true }), { grant: GRANT, actor: actor('rick'), decision: 'approve', signature: signed }),
    );
    state.state = 'rejected';
    refusedAs(FailureType.RunFinished, decide(actor('rick')));
  });

  it('lets only the author or document control withdraw, only the author revise (document control once the author was deactivated), only document control extend or reassign', () => {
    const state = inReview();
    validateWithdrawal(facts(state), { grant: GRANT, actor: actor('alice', ['author']), reason: 'wrong template' });
    validateWithdrawal(facts(state), { grant: GRANT, actor: actor('dora', ['document_control']), reason: 'duplicate' });
    refusedAs(FailureType.Forbidden, () => validateWithdrawal(facts(state), { grant: GRANT, actor: actor('rita'), reason: 'no' }));
    refusedAs(FailureType.InvalidInput, () => validateWithdrawal(facts(state), { grant: GRANT, actor: actor('alice'), reason: '' }));
    const control = actor('dora', ['document_control']);
    const now = Date.parse('2026-03-03T09:00:00.000Z');
    validateExtension(facts(state), { grant: GRANT, actor: control, dueAt: '2026-03-06T09:00:00.000Z', reason: 'audit week' }, now);
    refusedAs(FailureType.Forbidden, () =>
      validateExtension(facts(state), { grant: GRANT, actor: actor('rita'), dueAt: '2026-03-06T09:00:00.000Z', reason: 'x' }, now),
    );
    refusedAs(FailureType.InvalidInput, () =>
      validateExtension(facts(state), { grant: GRANT, actor: control, dueAt: '2026-03-04T09:00:00.000Z', reason: 'earlier' }, now),
    );
    refusedAs(FailureType.InvalidInput, () =>
      validateExtension(facts(state), { grant: GRANT, actor: control, dueAt: 'soon', reason: 'x' }, now),
    );
    validateReassignment(facts(state), { grant: GRANT, actor: control, from: 'user:rob', to: user('ruth'), reason: 'on leave' });
    refusedAs(FailureType.InvalidInput, () =>
      validateReassignment(facts(state), { grant: GRANT, actor: control, from: 'user:rob', to: user('alice'), reason: 'x' }),
    );
    refusedAs(FailureType.InvalidInput, () =>
      validateReassignment(facts(state), { grant: GRANT, actor: control, from: 'user:rob', to: user('rick'), reason: 'x' }),
    );
    refusedAs(FailureType.InvalidInput, () =>
      validateReassignment(facts(state), { grant: GRANT, actor: control, from: 'user:nobody', to: user('ruth'), reason: 'x' }),
    );
    refusedAs(FailureType.WrongStage, () => validateRevision(facts(state), { grant: GRANT, actor: actor('alice'), contentHash: 'h2' }));
    state.state = 'changes_requested';
    validateRevision(facts(state), { grant: GRANT, actor: actor('alice'), contentHash: 'h2' });
    refusedAs(FailureType.Forbidden, () => validateRevision(facts(state), { grant: GRANT, actor: actor('rita'), contentHash: 'h2' }));
    // Document control uploads the revision only once the author's revisions were handed over (author deactivated).
    refusedAs(FailureType.Forbidden, () => validateRevision(facts(state), { grant: GRANT, actor: control, contentHash: 'h2' }));
    validateRevision(facts(state, { revisionsHandedOver: true }), { grant: GRANT, actor: control, contentHash: 'h2' });
    refusedAs(FailureType.Forbidden, () =>
      validateRevision(facts(state, { revisionsHandedOver: true }), { grant: GRANT, actor: actor('rita'), contentHash: 'h2' }),
    );
    refusedAs(FailureType.InvalidInput, () => validateRevision(facts(state), { grant: GRANT, actor: actor('alice'), contentHash: 'h1' }));
    refusedAs(FailureType.DuplicateDecision, () =>
      validateRevision(facts(state, { revising: true }), { grant: GRANT, actor: actor('alice'), contentHash: 'h2' }),
    );
  });

  it('refuses a request with no actor, a malformed actor, or no well-formed grant ID, before any other rule', () => {
    const state = inReview();
    const decide = (args: unknown) => () => validateDecision(facts(state), args as Parameters<typeof validateDecision>[1]);
    const good = { grant: GRANT, actor: actor('rita'), decision: 'approve', signature: signed };
    decide(good)();
    for (const forged of [
      null,
      { ...good, actor: null },
      { ...good, actor: { userId: 'rita', username: 'rita', roles: ['reviewer'] } },
      { ...good, actor: { ...actor('rita'), roles: ['superuser'] } },
      { ...good, actor: { ...actor('rita'), userId: 42 } },
      { ...good, grant: undefined },
      { ...good, grant: 'short' },
      { ...good, grant: `${GRANT.slice(1)}!` },
    ]) {
      refusedAs(FailureType.GrantRefused, decide(forged));
    }
    refusedAs(FailureType.GrantRefused, () =>
      validateWithdrawal(facts(state), { actor: null, reason: 'x' } as unknown as Parameters<typeof validateWithdrawal>[1]),
    );
  });

  it('accepts a periodic review only while one is open, from document control, with a comment', () => {
    const state = inReview();
    Object.assign(state, { state: 'effective', currentStage: null, periodicReviewOpen: false });
    const control = actor('dora', ['document_control']);
    refusedAs(FailureType.WrongStage, () => validatePeriodicReview(facts(state), { grant: GRANT, actor: control, comment: 'fine' }));
    state.periodicReviewOpen = true;
    validatePeriodicReview(facts(state), { grant: GRANT, actor: control, comment: 'fine' });
    refusedAs(FailureType.Forbidden, () => validatePeriodicReview(facts(state), { grant: GRANT, actor: actor('rita'), comment: 'fine' }));
    refusedAs(FailureType.InvalidInput, () => validatePeriodicReview(facts(state), { grant: GRANT, actor: control, comment: '' }));
  });
});
