import assert from 'node:assert/strict';
import { stagePendingActions, supplierPendingActions } from '../../api/services/operations';

describe('pending actions of a run, from its search attributes', () => {
  it('names the stage as the action pending, its assignees as who may take it, and its due date', () => {
    const dueAt = new Date('2026-12-01T09:00:00Z');
    assert.deepEqual(stagePendingActions({ Stage: 'triage', Assignees: ['role:qa_manager'], DueAt: dueAt }), [
      { action: 'triage', by: ['role:qa_manager'], dueAt: '2026-12-01T09:00:00.000Z' },
    ]);
    assert.deepEqual(stagePendingActions({ Stage: 'ready', Assignees: ['user:doc'], DueAt: null }), [
      { action: 'ready', by: ['user:doc'] },
    ]);
  });

  it('has nothing pending where nobody is assigned or no stage is published', () => {
    assert.deepEqual(stagePendingActions({ Stage: 'generating', Assignees: null, DueAt: null }), []);
    assert.deepEqual(stagePendingActions({ Stage: 'generating', Assignees: [], DueAt: null }), []);
    assert.deepEqual(stagePendingActions({ Stage: null, Assignees: ['user:doc'], DueAt: null }), []);
  });

  it("offers QA the supplier decisions the supplier's status allows, and none once it is disqualified", () => {
    const decisions = (Stage: string | null) => supplierPendingActions({ Stage }).map((a) => a.action);
    assert.deepEqual(decisions('pending'), ['approve', 'suspend', 'disqualify']);
    assert.deepEqual(decisions('approved'), ['suspend', 'disqualify']);
    assert.deepEqual(decisions('suspended'), ['approve', 'disqualify']);
    assert.deepEqual(decisions('disqualified'), []);
    assert.deepEqual(decisions(null), []);
    assert.deepEqual(supplierPendingActions({ Stage: 'pending' })[0].by, ['role:qa_manager']);
  });
});
