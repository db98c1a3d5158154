import { FailureType, refuse } from '../../common/failures';
import type { Actor, Role } from '../../common/roles';

/** Refuses an empty or blank required text. */
export function requireText(value: string | undefined | null, what: string): void {
  if (!value?.trim()) refuse(FailureType.InvalidInput, `${what} is required`);
}

/**
 * Refuses unless the record is in one of the allowed states; a finished record is refused as finished, so the
 * caller learns that nothing more can be done rather than that it came at the wrong moment.
 */
export function requireState<S extends string>(subject: string, current: S, allowed: readonly S[], finished: readonly S[] = []): void {
  if (allowed.includes(current)) return;
  if (finished.includes(current)) refuse(FailureType.RunFinished, `${subject} is ${current}; nothing more can be done`);
  refuse(FailureType.WrongStage, `${subject} is ${current}, not ${allowed.join(' or ')}`);
}

/**
 * Refuses an actor who has none of the roles. `adminPasses` is for the actions an admin may take on anyone's
 * behalf; a machine event (no actor) is the API's to authorise and passes here.
 */
export function requireRole(actor: Actor | null, roles: readonly Role[], opts: { adminPasses?: boolean; what?: string } = {}): void {
  if (!actor) return;
  if (roles.some((r) => actor.roles.includes(r))) return;
  if (opts.adminPasses && actor.roles.includes('admin')) return;
  refuse(FailureType.Forbidden, opts.what ? `only ${opts.what}` : `this needs one of: ${roles.join(', ')}`);
}
