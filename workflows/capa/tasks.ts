import type { CapaTaskSubject } from '../../activities/capa';
import { assigneeKey, type AssigneeRef } from '../../common/assignees';
import type { CapaAction, CapaState, EffectivenessRecord } from '../../common/capa';

/** QA managers as a role: triage, plan approval, effectiveness and closure are theirs. */
export const QA: AssigneeRef = { kind: 'role', role: 'qa_manager' };

/** An inbox task the state calls for: what it asks, who holds it and when it is due. */
export interface WantedTask {
  subject: CapaTaskSubject;
  assignee: AssigneeRef;
  dueAt: string | null;
}

export const openActions = (s: CapaState): CapaAction[] => (s.plan?.actions ?? []).filter((a) => a.state === 'open');

/** The passing effectiveness check of the current round, if there is one. */
export const latestPassed = (s: CapaState): EffectivenessRecord | null =>
  s.effectiveness.find((e) => e.round === s.round && e.passed) ?? null;

/** Who hears of what is overdue or left without a holder: the triaging QA manager, else QA managers as a role. */
export const escalateTo = (s: CapaState): AssigneeRef => (s.qaManager ? { kind: 'user', ...s.qaManager } : QA);

/** The inbox tasks the current state calls for. */
export function wantedTasks(s: CapaState): WantedTask[] {
  const task = (subject: CapaTaskSubject, assignee: AssigneeRef, dueAt: string | null = null): WantedTask => ({ subject, assignee, dueAt });
  switch (s.stage) {
    case 'triage':
      return [task({ what: 'triage' }, QA)];
    case 'containment':
    case 'investigation':
      return s.owner ? [task({ what: s.stage }, s.owner, s.deadline?.dueAt)] : [];
    case 'plan_approval':
      return [task({ what: 'plan_approval' }, QA)];
    case 'implementation':
      return openActions(s).flatMap((a) => [
        task({ what: 'action', actionId: a.id, actionType: a.type }, a.owner, a.dueAt),
        ...(a.extensionRequest ? [task({ what: 'extension', actionId: a.id, request: a.extensionRequests }, QA)] : []),
      ]);
    case 'effectiveness_review':
      return latestPassed(s) ? [task({ what: 'closure' }, QA)] : [task({ what: 'effectiveness' }, QA)];
    default:
      return [];
  }
}

/** The task's part of its key: unique within a round, and a prefix for the action's tasks. */
export function taskWhat(subject: CapaTaskSubject): string {
  if (subject.what === 'action') return `action:${subject.actionId}`;
  if (subject.what === 'extension') return `extension:${subject.actionId}:${subject.request}`;
  return subject.what;
}

/** A task's key: the run, the round, what it asks and who holds it; the same task is never opened twice. */
export const taskKey = (workflowId: string, round: number, task: WantedTask): string =>
  `${workflowId}:r${round}:${taskWhat(task.subject)}:${assigneeKey(task.assignee)}`;

/** The Assignees search attribute: everyone who holds one of the tasks. */
export const assigneesOf = (tasks: WantedTask[]): string[] => [...new Set(tasks.map((t) => assigneeKey(t.assignee)))];
