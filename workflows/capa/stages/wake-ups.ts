import { assigneeKey } from '../../../common/assignees';
import type { CapaCase } from '../capa-case';
import type { Due } from '../deadlines';
import { escalateTo, wantedTasks } from '../tasks';
import { reassignFrom } from './reassignment';

/**
 * A reminder to the holder before a due date, or an escalation (to the holder and the QA manager) once it passed.
 * The step also checks the holder is still active: one deactivated without the run being told is found here.
 */
export async function remind(c: CapaCase, due: Due, kind: 'reminder' | 'escalation'): Promise<void> {
  const s = c.state;
  const round = s.round;
  const before = wantedTasks(s);
  due.flags.reminded = true;
  if (kind === 'escalation') due.flags.escalated = true;
  c.publish();
  const { what, holder, dueAt } = due;
  const { inactive } = await c.record(before, round, {
    audit: { action: kind === 'reminder' ? 'capa.reminder' : 'capa.overdue', details: { what, holder: assigneeKey(holder), dueAt } },
    notify: [
      kind === 'reminder'
        ? { to: [holder], kind: 'capa.reminder', what, dueAt }
        : { to: [holder, escalateTo(s)], kind: 'capa.overdue', what, dueAt, holder: assigneeKey(holder) },
    ],
    checkActive: holder.kind === 'user' ? [holder.userId] : [],
  });
  if (inactive.length && holder.kind === 'user') await reassignFrom(c, holder.userId, holder.username);
}
