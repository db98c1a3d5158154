import { FailureType, refuse } from '../../common/failures';
import { READ_AND_UNDERSTOOD, type AssignmentState, type SignOffArgs } from '../../common/training';
import { requireProof } from '../lib/proof';

/** What the validator reads of a run. */
export interface AssignmentFacts {
  readonly state: AssignmentState;
  readonly userId: string;
  readonly signing: boolean;
}

/**
 * Only the assigned person signs their own training (no delegation: anyone else is refused, whatever their roles),
 * with the meaning "read and understood", once, while the assignment is open.
 */
export function validateSignOff(facts: AssignmentFacts, args: SignOffArgs): void {
  requireProof(args);
  const { state, username, documentNumber, version } = facts.state;
  if (args.actor.userId !== facts.userId) {
    refuse(FailureType.NotAssignee, `only ${username} signs their own training on ${documentNumber} v${version}; it cannot be delegated`);
  }
  if (state === 'completed' || state === 'superseded' || state === 'cancelled' || state === 'refused') {
    refuse(FailureType.RunFinished, `${username}'s training on ${documentNumber} v${version} is ${state}; nothing more can be done`);
  }
  if (state !== 'assigned' || facts.signing) refuse(FailureType.WrongStage, `${username}'s training on ${documentNumber} v${version} is not open for signing`);
  if (args.signature?.meaning !== READ_AND_UNDERSTOOD) refuse(FailureType.InvalidInput, `a training sign-off means ${READ_AND_UNDERSTOOD}`);
}
