import { setHandler, workflowInfo } from '@temporalio/workflow';
import { userDeactivatedSignal } from '../../common/deactivation';
import {
  assignmentEndedSignal,
  assignmentStateQuery,
  signOffUpdate,
  type AssignmentState,
  type TrainingAssignmentInput,
} from '../../common/training';
import { upgradesWithEachBuild } from '../lib/versioning';
import { AssignmentCase } from './assignment-case';
import { validateSignOff } from './validators';

upgradesWithEachBuild(trainingAssignmentWorkflow);

/** `training:<user>:<doc>:v<n>`: one person's read-and-understood task on one effective version of a document. */
export async function trainingAssignmentWorkflow(input: TrainingAssignmentInput): Promise<AssignmentState> {
  const assignment = new AssignmentCase(input, workflowInfo().workflowId);
  setHandler(assignmentStateQuery, () => assignment.state);
  setHandler(signOffUpdate, (args) => assignment.signOff(args), { validator: (args) => validateSignOff(assignment, args) });
  setHandler(assignmentEndedSignal, ({ reason }) => assignment.requestEnd(reason));
  setHandler(userDeactivatedSignal, (user) => assignment.handOverFrom(user));
  return assignment.run();
}
