import { assigneeKey, type AssigneeRef } from '../../../common/assignees';
import type { CapaState } from '../../../common/capa';
import { iso } from '../../lib/time';
import { actionRow, type CapaCase } from '../capa-case';
import { escalateTo, openActions, taskKey } from '../tasks';
import { FINISHED } from '../validators';

const heldBy = (ref: AssigneeRef | null, userId: string) => ref?.kind === 'user' && ref.userId === userId;

/** Whether a user holds anything in this open CAPA: its ownership or an open action. */
export function holdsSomething(s: CapaState, userId: string): boolean {
  return !FINISHED.includes(s.stage) && (heldBy(s.owner, userId) || openActions(s).some((x) => heldBy(x.owner, userId)));
}

/**
 * Whatever a deactivated user holds in this CAPA goes to the triaging QA manager (or QA managers as a role). Told by
 * a signal (`told`), the step is written only if Postgres shows the user inactive; the run's own check needs no more.
 */
export async function reassignFrom(c: CapaCase, userId: string, username: string, told = false): Promise<void> {
  const s = c.state;
  const from = `user:${username}`;
  const moved: string[] = [];
  await c.change(
    () => {
      if (s.qaManager?.userId === userId) s.qaManager = null;
      const to = escalateTo(s);
      const at = iso(Date.now());
      if (heldBy(s.owner, userId)) {
        s.owner = to;
        moved.push('owner');
        s.reassignments.push({ from, to: assigneeKey(to), what: 'owner', at });
      }
      for (const x of openActions(s).filter((y) => heldBy(y.owner, userId))) {
        x.owner = to;
        moved.push(x.id);
        s.reassignments.push({ from, to: assigneeKey(to), what: `action ${x.id}`, at });
      }
    },
    (round, before) => ({
      closeTasks: before
        .filter((task) => heldBy(task.assignee, userId))
        .map((task) => ({ prefix: taskKey(c.workflowId, round, task), state: 'reassigned' as const })),
      audit: {
        action: 'capa.reassigned',
        by: 'system:capa',
        details: { from, to: assigneeKey(escalateTo(s)), what: moved, reason: 'user deactivated' },
      },
      actions: openActions(s).map((x) => actionRow(x, round)),
      notify: moved.length ? [{ to: [escalateTo(s)], kind: 'capa.reassigned', from: username, moved }] : [],
    }),
    undefined,
    told ? { kind: 'user_deactivated', userId } : undefined,
  );
}
