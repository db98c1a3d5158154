import { type CapaState, type ContainmentArgs, type InvestigationArgs } from '../../../common/capa';
import { iso } from '../../lib/time';
import type { CapaCase } from '../capa-case';
import { grantProof } from '../proof';

/** The owner records how the problem is contained; the investigation's deadline starts. */
export function contain(c: CapaCase, args: ContainmentArgs): Promise<CapaState> {
  const s = c.state;
  const { actor, summary, actions } = args;
  let investigationDueAt = '';
  return c.change(
    () => {
      s.containment = { summary, actions, by: actor.username, at: iso(Date.now()) };
      s.stage = 'investigation';
      investigationDueAt = c.setDeadline('investigation');
    },
    (round) => ({
      audit: { action: 'capa.contained', actor, details: { containmentActions: actions.length, investigationDueAt } },
      record: { kind: 'containment', round, body: { summary, actions }, by: actor.username },
    }),
    actor.userId,
    grantProof('capa.record_containment', args, { holds: c.state.owner ? [c.state.owner] : [] }),
  );
}

/** The owner records the root cause (again, until a plan is submitted); the stage stays investigation. */
export function recordInvestigation(c: CapaCase, args: InvestigationArgs): Promise<CapaState> {
  const { actor, method, rootCause, findings } = args;
  return c.change(
    () => {
      c.state.investigation = { method, rootCause, findings, by: actor.username, at: iso(Date.now()) };
    },
    (round) => ({
      audit: { action: 'capa.root_cause_recorded', actor, details: { method } },
      record: { kind: 'investigation', round, body: { method, rootCause, findings }, by: actor.username },
    }),
    undefined,
    grantProof('capa.record_investigation', args, { holds: c.state.owner ? [c.state.owner] : [] }),
  );
}
