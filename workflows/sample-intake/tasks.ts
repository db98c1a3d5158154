import type { SampleNextAction, StepTask } from '../../activities/sample-intake';
import type { AssigneeRef } from '../../common/assignees';
import type { SampleIntakeState } from '../../common/sample-intake';
import { isAccepted } from './state';

const LAB_TECHNICIAN: AssigneeRef = { kind: 'role', role: 'lab_technician' };
const LAB_DIRECTOR: AssigneeRef = { kind: 'role', role: 'lab_director' };

/** Who must act next and what they must do; null when the sample waits on nobody (in transit, routed, ended). */
function nextAction(sample: SampleIntakeState): { assignee: AssigneeRef; next: SampleNextAction } | null {
  if (sample.state === 'received') return { assignee: LAB_TECHNICIAN, next: 'inspect' };
  if (sample.state === 'inspected') {
    if (!sample.hasOrder) return { assignee: LAB_TECHNICIAN, next: 'attach_order' };
    return sample.inspection?.passed ? { assignee: LAB_TECHNICIAN, next: 'accept' } : { assignee: LAB_DIRECTOR, next: 'decide' };
  }
  if (isAccepted(sample) && sample.state !== 'routed') return { assignee: LAB_TECHNICIAN, next: 'bench_work' };
  return null;
}

/** Who the sample waits on, for the Assignees search attribute. */
export function waitingOn(sample: SampleIntakeState): string[] {
  const action = nextAction(sample);
  return action && action.assignee.kind === 'role' ? [`role:${action.assignee.role}`] : [];
}

/** The open task of the sample's current stage, or null when nobody has to act. */
export function nextTask(sample: SampleIntakeState): StepTask | null {
  const action = nextAction(sample);
  return action ? { stage: sample.stage, ...action, dueAt: sample.dueAt } : null;
}
