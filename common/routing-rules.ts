import { assigneeKey } from './assignees';
import type { Actor } from './roles';
import type { Slot, StageRule, StageState, StageStatus } from './document-approval';
import type { AssigneeRef } from './assignees';

export function requiredApprovals(rule: StageRule, slotCount: number): number {
  if (rule.type === 'all') return slotCount;
  if (rule.type === 'any') return 1;
  return rule.k;
}

/** The open slot this actor may fill: their own named slot first, else one held by a role they have. */
export function openSlotFor(stage: StageState, actor: Actor): Slot | undefined {
  const open = stage.slots.filter((slot) => !slot.decision);
  return (
    open.find((slot) => slot.assignee.kind === 'user' && slot.assignee.userId === actor.userId) ??
    open.find((slot) => slot.assignee.kind === 'role' && actor.roles.includes(slot.assignee.role))
  );
}

export function hasDecided(stage: StageState, userId: string): boolean {
  return stage.slots.some((slot) => slot.decision?.userId === userId);
}

/** What the decisions so far mean for the stage: still active, or resolved one way. */
export function resolveStage(stage: StageState): StageStatus {
  const decisions = stage.slots.flatMap((slot) => (slot.decision ? [slot.decision] : []));
  if (decisions.some((d) => d.kind === 'reject')) return 'rejected';
  if (decisions.some((d) => d.kind === 'request_changes')) return 'changes_requested';
  const approvals = decisions.filter((d) => d.kind === 'approve').length;
  return approvals >= requiredApprovals(stage.rule, stage.slots.length) ? 'approved' : 'active';
}

export function pendingAssigneeKeys(stage: StageState): string[] {
  return stage.slots.filter((slot) => !slot.decision).map((slot) => assigneeKey(slot.assignee));
}

/** Problems with a routing as submitted, in words a user can act on; empty when it is usable. */
export function routingProblems(
  stages: { name: string; rule: StageRule; assignees: AssigneeRef[] }[],
  authorUserId: string,
): { field: string; detail: string }[] {
  const problems: { field: string; detail: string }[] = [];
  if (stages.length === 0) problems.push({ field: 'routing', detail: 'routing needs at least one stage' });
  stages.forEach((stage, i) => {
    const field = `routing[${i}]`;
    if (stage.assignees.length === 0) problems.push({ field: `${field}.assignees`, detail: `stage "${stage.name}" has no assignees` });
    if (stage.rule.type === 'k_of_n' && (stage.rule.k < 1 || stage.rule.k > stage.assignees.length)) {
      problems.push({
        field: `${field}.rule.k`,
        detail: `stage "${stage.name}" needs ${stage.rule.k} approvals but has ${stage.assignees.length} assignees`,
      });
    }
    const keys = stage.assignees.map(assigneeKey);
    const dup = keys.find((key, j) => keys.indexOf(key) !== j);
    if (dup) problems.push({ field: `${field}.assignees`, detail: `stage "${stage.name}" lists ${dup} twice` });
    if (stage.assignees.some((a) => a.kind === 'user' && a.userId === authorUserId)) {
      problems.push({ field: `${field}.assignees`, detail: 'the author cannot review or approve their own version' });
    }
  });
  return problems;
}
