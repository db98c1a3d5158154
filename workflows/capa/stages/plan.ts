import { assigneeKey } from '../../../common/assignees';
import { contentHashOf } from '../../../common/capa-hash';
import { CAPA_STAGES, type CapaAction, type CapaPlan, type CapaState, type PlanArgs, type PlanDecisionArgs } from '../../../common/capa';
import { iso } from '../../lib/time';
import { actionRow, type CapaCase } from '../capa-case';
import { reminderPast } from '../deadlines';
import { grantProof } from '../proof';
import { QA } from '../tasks';

/** The plan as the approver will sign it: numbered actions and criteria, and the hash of both. */
export function planOf(number: string, round: number, args: PlanArgs): Pick<CapaPlan, 'actions' | 'criteria' | 'contentHash'> {
  const actions: CapaAction[] = args.actions.map((x, i) => ({
    id: `A${i + 1}`,
    type: x.type,
    description: x.description,
    owner: x.owner,
    dueAt: iso(Date.parse(x.dueAt)),
    state: 'open',
    extensions: 0,
    extensionRequest: null,
    extensionRequests: 0,
    completedBy: null,
    completedAt: null,
    evidence: null,
    reminded: false,
    escalated: false,
  }));
  const criteria = args.criteria.map((c, i) => ({ id: `C${i + 1}`, description: c.description, measure: c.measure }));
  const contentHash = contentHashOf({
    number,
    round,
    actions: actions.map((x) => ({ id: x.id, type: x.type, description: x.description, owner: assigneeKey(x.owner), dueAt: x.dueAt })),
    criteria,
  });
  return { actions, criteria, contentHash };
}

/** The owner submits the actions and the effectiveness criteria; the plan waits for QA's signed approval. */
export function submitPlan(c: CapaCase, args: PlanArgs): Promise<CapaState> {
  const s = c.state;
  const { actor } = args;
  const { actions, criteria, contentHash } = planOf(s.number, s.round, args);
  return c.change(
    () => {
      s.plan = { actions, criteria, contentHash, submittedBy: actor.username, submittedAt: iso(Date.now()) };
      s.stage = 'plan_approval';
      s.deadline = null;
    },
    (round) => ({
      audit: { action: 'capa.plan_submitted', actor, details: { actions: actions.length, criteria: criteria.length, contentHash } },
      record: {
        kind: 'plan',
        round,
        body: { actions: actions.map(({ reminded: _r, escalated: _e, ...x }) => x), criteria, contentHash },
        by: actor.username,
      },
      notify: [{ to: [QA], kind: 'capa.plan_submitted' }],
    }),
    actor.userId,
    grantProof('capa.submit_plan', args, { holds: s.owner ? [s.owner] : [] }),
  );
}

/** QA approves the plan with a signature over its hash (implementation starts), or rejects it back to investigation. */
export function decidePlan(c: CapaCase, args: PlanDecisionArgs): Promise<CapaState> {
  const s = c.state;
  const { actor, signature } = args;
  const plan = s.plan;
  // QA decides, but never on a plan they own themselves.
  const may = { roles: ['qa_manager' as const], never: s.owner?.kind === 'user' ? [s.owner.userId] : [] };
  if (args.decision === 'reject') {
    return c.change(
      () => {
        c.startNewRound('plan_rejected');
        s.stage = 'investigation';
        c.setDeadline('investigation');
      },
      (round) => ({
        audit: { action: 'capa.plan_rejected', actor, details: { comment: args.comment, rejectedRound: round } },
        notify: s.owner ? [{ to: [s.owner], kind: 'capa.plan_rejected', comment: args.comment ?? '' }] : [],
      }),
      actor.userId,
      grantProof('capa.decide_plan', args, may),
    );
  }
  // The validator refused an approval without a signature or a plan to sign.
  if (!signature || !plan) return Promise.resolve(s);
  return c.change(
    () => {
      const now = Date.now();
      s.planApproval = {
        username: actor.username,
        printedName: actor.printedName,
        meaning: signature.meaning,
        signedAt: signature.signedAt,
        contentHash: signature.contentHash,
      };
      for (const x of plan.actions) x.reminded = reminderPast(x.dueAt, s.durations.reminderBefore, now);
      s.stage = 'implementation';
    },
    (round) => ({
      audit: { action: 'capa.plan_approved', actor, details: { contentHash: plan.contentHash } },
      signature: { round, stage: 'plan_approval', stageIndex: CAPA_STAGES.indexOf('plan_approval'), actor, signature },
      actions: plan.actions.map((x) => actionRow(x, round)),
      notify: plan.actions.map((x) => ({
        to: [x.owner],
        kind: 'capa.action_assigned' as const,
        actionId: x.id,
        actionType: x.type,
        description: x.description,
        dueAt: x.dueAt,
      })),
    }),
    actor.userId,
    grantProof('capa.decide_plan', args, may, signature),
  );
}
