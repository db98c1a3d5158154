import type { Actor, Role } from './roles';

/** Who holds a task or a review slot: a named user, or a role (any one holder of the role may act). */
export type AssigneeRef = { kind: 'user'; userId: string; username: string } | { kind: 'role'; role: Role };

/** The stable key of an assignee, as stored in the Assignees search attribute and in the task list. */
export function assigneeKey(ref: AssigneeRef): string {
  return ref.kind === 'user' ? `user:${ref.username}` : `role:${ref.role}`;
}

/** Whether the actor is the assignee: the named user, or a holder of the role. */
export function holds(ref: AssigneeRef | null, actor: Actor): boolean {
  return !!ref && (ref.kind === 'user' ? ref.userId === actor.userId : actor.roles.includes(ref.role));
}
