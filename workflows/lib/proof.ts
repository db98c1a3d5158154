import { ActivityFailure, ApplicationFailure } from '@temporalio/workflow';
import { FailureType, refuse } from '../../common/failures';
import { isGrantId } from '../../common/grants';
import { ROLES, type Actor } from '../../common/roles';

const isText = (value: unknown, max = 200): value is string => typeof value === 'string' && value.length > 0 && value.length <= max;

/** Whether this is an actor as the API builds one; anything else did not come from labflow's API. */
export function isActor(actor: unknown): actor is Actor {
  if (typeof actor !== 'object' || actor === null) return false;
  const { userId, username, printedName, roles } = actor as Record<string, unknown>;
  return (
    isText(userId) &&
    isText(username) &&
    isText(printedName) &&
    Array.isArray(roles) &&
    roles.every((role) => (ROLES as readonly unknown[]).includes(role))
  );
}

/**
 * Every request that records a person's action names who acts and carries the ID of the grant the API wrote for
 * it. A validator cannot read Postgres, so it checks only the shape; the recording activity checks the grant
 * itself, and until it has, the actor is only what the run shows while the action is in flight.
 */
export function requireProof(args: unknown): asserts args is { actor: Actor; grant: string } {
  if (typeof args !== 'object' || args === null) refuse(FailureType.GrantRefused, 'the request is empty');
  const { actor, grant } = args as Record<string, unknown>;
  if (!isActor(actor)) refuse(FailureType.GrantRefused, 'the request names no valid actor');
  if (!isGrantId(grant)) refuse(FailureType.GrantRefused, 'the request carries no grant from labflow');
}

/** Refusals by which a recording step wrote nothing: the proof did not hold, or the gate found the person unfit. */
const RECORDING_REFUSALS: readonly string[] = [FailureType.GrantRefused, FailureType.GateRefused];

/**
 * The refusal inside an activity failure when the recording step found the action's proof invalid (or, for an
 * action behind the gate, the person not fit for it); its type says which.
 */
export function grantRefusal(err: unknown): ApplicationFailure | undefined {
  if (err instanceof ActivityFailure && err.cause instanceof ApplicationFailure && RECORDING_REFUSALS.includes(err.cause.type ?? '')) {
    return err.cause;
  }
  return undefined;
}

/** The failure type a refusal is answered with: the recording step's own. */
export const refusalType = (refusal: ApplicationFailure): FailureType =>
  refusal.type === FailureType.GateRefused ? FailureType.GateRefused : FailureType.GrantRefused;

/** Answers the Update's caller with the recording step's refusal: its type, message and details (what the gate found missing). */
export function passOnRefusal(refusal: ApplicationFailure): never {
  refuse(refusalType(refusal), refusal.message, refusal.details as unknown[] | undefined);
}

/**
 * Runs the step that records an accepted action. When its proof is refused nothing was written, so the run gives
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
    passOnRefusal(refusal);
  }
}

/** Hands an activity's typed refusal on to the Update's caller (a state Postgres no longer shows, an unproven action); any other failure stays the run's. */
export function refuseAsRecorded(err: unknown): never {
  if (err instanceof ActivityFailure && err.cause instanceof ApplicationFailure && err.cause.type) {
    refuse(err.cause.type as FailureType, err.cause.message, err.cause.details as unknown[] | undefined);
  }
  throw err;
}
