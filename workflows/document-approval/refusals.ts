import { ActivityFailure, ApplicationFailure } from '@temporalio/workflow';
import { FailureType, refuse } from '../../common/failures';

/** The refusal inside an activity failure when the recording step found the action's grant invalid. */
export function grantRefusal(err: unknown): ApplicationFailure | undefined {
  if (err instanceof ActivityFailure && err.cause instanceof ApplicationFailure && err.cause.type === FailureType.GrantRefused) {
    return err.cause;
  }
  return undefined;
}

/**
 * Runs the step that records an accepted action. When its grant is refused nothing was written, so the run gives
 * back what it had taken in memory (a slot, an assignee, a due date) and the Update's caller gets the refusal;
 * any other failure is the run's as before.
 */
export async function undoneIfRefused<T>(record: () => Promise<T>, undo: () => void): Promise<T> {
  try {
    return await record();
  } catch (err) {
    const refusal = grantRefusal(err);
    if (!refusal) throw err;
    undo();
    refuse(FailureType.GrantRefused, refusal.message);
  }
}
