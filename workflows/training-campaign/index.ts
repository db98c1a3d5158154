import { getExternalWorkflowHandle, setHandler, upsertSearchAttributes, workflowInfo } from '@temporalio/workflow';
import {
  assignmentEndedSignal,
  campaignStateQuery,
  trainingIds,
  type AssignmentEnding,
  type CampaignState,
  type TrainingCampaignInput,
} from '../../common/training';
import { EntityId, EntityType, Stage } from '../../common/search-attributes';
import type { trainingAssignmentWorkflow } from '../training-assignment';
import { startOrJoinChild } from '../lib/children';
import { grantRefusal } from '../lib/proof';
import { db } from '../lib/proxies';

/**
 * `training-campaign:<doc>:v<n>`: started by a version's approval run as it becomes effective. Plans from
 * Postgres (the requirement, the impact document control decided), ends the open assignments of earlier versions
 * (superseded, or cancelled when the requirement is retired) and starts one assignment run per person to train.
 * A campaign started by anything else finds the version not effective and records nothing.
 */
export async function trainingCampaignWorkflow(input: TrainingCampaignInput): Promise<CampaignState> {
  const state: CampaignState = {
    documentNumber: input.documentNumber,
    version: input.version,
    stage: 'planning',
    impact: null,
    assigned: 0,
    superseded: 0,
    cancelled: 0,
  };
  setHandler(campaignStateQuery, () => state);
  const publish = () =>
    upsertSearchAttributes([
      { key: EntityType, value: 'training-campaign' },
      { key: EntityId, value: `${input.documentNumber}:v${input.version}` },
      { key: Stage, value: state.stage },
    ]);
  publish();
  let plan: Awaited<ReturnType<typeof db.planTrainingCampaign>>;
  try {
    plan = await db.planTrainingCampaign(input);
  } catch (err) {
    if (!grantRefusal(err)) throw err;
    state.stage = 'refused';
    publish();
    return state;
  }
  state.impact = plan.impact;
  state.stage = 'assigning';
  publish();
  const tell = async (ids: string[], reason: AssignmentEnding) => {
    for (const id of ids) {
      // An assignment that already ended has nothing left to end.
      await getExternalWorkflowHandle(id).signal(assignmentEndedSignal, { reason }).catch(() => undefined);
    }
  };
  await tell(plan.supersede, 'superseded');
  await tell(plan.cancel, 'requirement_retired');
  state.superseded = plan.supersede.length;
  state.cancelled = plan.cancel.length;
  const requestedBy = workflowInfo().workflowId;
  for (const person of plan.assign) {
    await startOrJoinChild<typeof trainingAssignmentWorkflow>('trainingAssignmentWorkflow', {
      workflowId: trainingIds.assignment(person.username, input.documentNumber, input.version),
      args: [{ ...input, userId: person.userId, username: person.username, requestedBy }],
    });
    state.assigned += 1;
  }
  state.stage = 'done';
  publish();
  return state;
}
