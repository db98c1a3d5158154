import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import type { DocumentApprovalInput, DocumentApprovalState } from '../../common/document-approval';
import type { ApiDeps } from '../../api/deps';
import { versionView } from '../../api/services/document-approval';
import type { VersionRow } from '../../db/documents';
import { initialState } from '../../workflows/document-approval/stages';
import { testEnv } from '../setup/env';

/**
 * A run names its current stage before the stage's opening is recorded (its tasks written, the record moved out of
 * draft); decisions are accepted only once the stage is active. A reader shown the stage's name in that moment acts
 * on it and meets a refusal, so a version's view names a stage only once it has been opened.
 */
describe('a version read while its run is opening a stage', () => {
  const input = {
    documentId: randomUUID(),
    documentNumber: 'SOP-OPEN-1',
    version: 1,
    contentHash: 'a'.repeat(64),
    routing: [
      { name: 'Technical review', rule: { type: 'all' }, assignees: [{ user: 'reviewer' }], due: '72h' },
      { name: 'QA approval', rule: { type: 'any' }, assignees: [{ role: 'qa' }], due: '72h' },
    ],
  } as unknown as DocumentApprovalInput;

  /** The record as a reader finds it: the draft the run has not yet moved on, or the stage it recorded. */
  const row = (over: Partial<VersionRow> = {}): VersionRow =>
    ({
      id: randomUUID(),
      number: input.documentNumber,
      title: 'Open stage',
      version: 1,
      author: 'author',
      state: 'draft',
      content_hash: input.contentHash,
      round: 1,
      workflow_id: null,
      stage_name: null,
      assignees: [],
      due_at: null,
      next_review_at: null,
      submitted_at: null,
      approved_at: null,
      effective_at: null,
      closed_at: null,
      ...over,
    }) as VersionRow;

  /** The API's dependencies with a run that answers its state query with `state`. */
  const depsWithRun = (state: DocumentApprovalState) =>
    ({
      db: testEnv().db,
      temporal: { workflow: { getHandle: () => ({ query: async () => structuredClone(state) }) } },
    }) as unknown as ApiDeps;

  const viewOf = async (state: DocumentApprovalState, record = row()) => {
    const view = await versionView(depsWithRun(state), record);
    assert.equal(view.live, true, 'the view is the live run’s');
    return view;
  };

  it('names no stage while the first one is still pending, and names it once it is active', async () => {
    const state = initialState(input, 'document-approval:SOP-OPEN-1:v1');
    state.currentStage = 0;
    const opening = await viewOf(state);
    assert.equal(opening.state, 'in_review');
    assert.equal(opening.stage, null, 'a stage whose opening is not recorded is not named');

    state.stages[0].status = 'active';
    const opened = await viewOf(state, row({ state: 'in_review', workflow_id: state.workflowId, stage_name: 'Technical review' }));
    assert.equal(opened.stage, 'Technical review');
  });

  it('names neither the closed stage nor the next one while the next is being opened', async () => {
    const state = initialState(input, 'document-approval:SOP-OPEN-1:v1');
    state.stages[0].status = 'approved';
    state.currentStage = 0;
    assert.equal((await viewOf(state)).stage, 'Technical review', 'a decided stage is still named until the next opens');

    state.currentStage = 1;
    const record = row({ state: 'in_review', workflow_id: state.workflowId, stage_name: 'Technical review' });
    assert.equal((await viewOf(state, record)).stage, null);
    state.stages[1].status = 'active';
    assert.equal((await viewOf(state, record)).stage, 'QA approval');
  });

  it('names no stage when the run has none', async () => {
    const state = initialState(input, 'document-approval:SOP-OPEN-1:v1');
    assert.equal((await viewOf(state)).stage, null);
  });
});
