import { assigneeKey, holds } from '../../common/assignees';
import type {
  CapaAction,
  CapaStage,
  CapaState,
  CloseArgs,
  CompleteActionArgs,
  ContainmentArgs,
  EffectivenessArgs,
  ExtensionDecisionArgs,
  ExtensionRequestArgs,
  InvestigationArgs,
  LinkSourcesArgs,
  PlanArgs,
  PlanDecisionArgs,
  ReasonArgs,
  TriageArgs,
} from '../../common/capa';
import { FailureType, refuse } from '../../common/failures';
import type { Actor } from '../../common/roles';
import { requireRole, requireState, requireText } from '../lib/guards';
import { requireProof } from '../lib/proof';
import { latestPassed, openActions } from './tasks';

/*
 * What each Update may not do, judged against the state before it enters history. Pure functions of the state and
 * the arguments (and the time, where a due date must lie ahead), so they are tested without a run.
 */

/** A CAPA that ended: nothing but reopening (when closed) can be done with it. */
export const FINISHED: readonly CapaStage[] = ['closed', 'cancelled'];

const requireStage = (s: CapaState, ...allowed: CapaStage[]) => requireState(s.number, s.stage, allowed);
const requireQa = (actor: Actor, what: string) => requireRole(actor, ['qa_manager'], { what: `a QA manager may ${what}` });

function requireOwner(s: CapaState, actor: Actor): void {
  if (!holds(s.owner, actor))
    refuse(FailureType.NotAssignee, `only the CAPA owner (${s.owner ? assigneeKey(s.owner) : 'none yet'}) may do this`);
}

/** The open action of the current plan with this ID; refused when there is none or it is done. */
export function openAction(s: CapaState, id: string): CapaAction {
  const action = s.plan?.actions.find((a) => a.id === id);
  if (!action) refuse(FailureType.NotFound, `${s.number} has no action ${id} in its current plan`);
  if (action.state !== 'open') refuse(FailureType.DuplicateDecision, `action ${id} is already done`);
  return action;
}

export function validateTriage(s: CapaState, args: TriageArgs): void {
  requireProof(args);
  requireStage(s, 'triage');
  requireQa(args.actor, 'triage a CAPA');
  if (args.decision === 'accept') {
    for (const [name, value] of [
      ['severity', args.severity],
      ['occurrence', args.occurrence],
    ] as const) {
      if (value === undefined || !Number.isInteger(value) || value < 1 || value > 5)
        refuse(FailureType.InvalidInput, `${name} must be an integer from 1 to 5`);
    }
    if (!args.owner) refuse(FailureType.InvalidInput, 'accepting a CAPA needs an owner');
  } else {
    requireText(args.reason, 'a reason');
    if (args.decision === 'merge' && (!args.mergeInto || args.mergeInto === s.number))
      refuse(FailureType.InvalidInput, 'merge needs another CAPA to merge into');
  }
}

export function validateContainment(s: CapaState, args: ContainmentArgs): void {
  requireProof(args);
  requireStage(s, 'containment');
  requireOwner(s, args.actor);
  requireText(args.summary, 'a containment summary');
}

export function validateInvestigation(s: CapaState, args: InvestigationArgs): void {
  requireProof(args);
  requireStage(s, 'investigation');
  requireOwner(s, args.actor);
  requireText(args.rootCause, 'a root cause');
  requireText(args.findings, 'findings');
}

export function validatePlan(s: CapaState, args: PlanArgs, now: number): void {
  requireProof(args);
  requireStage(s, 'investigation');
  requireOwner(s, args.actor);
  if (!s.investigation) refuse(FailureType.WrongStage, 'record the root cause before submitting a plan');
  if (!args.actions.length) refuse(FailureType.InvalidInput, 'a plan needs at least one action');
  if (!args.criteria.length) refuse(FailureType.InvalidInput, 'effectiveness criteria must be defined before implementation');
  for (const [i, action] of args.actions.entries()) {
    requireText(action.description, `actions[${i}].description`);
    const due = Date.parse(action.dueAt);
    if (Number.isNaN(due) || due <= now) refuse(FailureType.InvalidInput, `actions[${i}].dueAt must be in the future`);
  }
  for (const [i, criterion] of args.criteria.entries()) requireText(criterion.measure, `criteria[${i}].measure`);
}

export function validatePlanDecision(s: CapaState, args: PlanDecisionArgs): void {
  requireProof(args);
  requireStage(s, 'plan_approval');
  requireQa(args.actor, 'approve a CAPA plan');
  if (holds(s.owner, args.actor) && s.owner?.kind === 'user') refuse(FailureType.Forbidden, 'the CAPA owner cannot approve their own plan');
  if (args.decision === 'approve') {
    if (!args.signature) refuse(FailureType.InvalidInput, 'plan approval must be signed');
    const planHash = s.plan?.contentHash;
    if (args.signature.contentHash !== planHash)
      refuse(FailureType.StaleContentHash, `the plan changed since it was read: its hash is ${planHash}`);
  } else requireText(args.comment, 'a comment');
}

export function validateCompleteAction(s: CapaState, args: CompleteActionArgs): void {
  requireProof(args);
  requireStage(s, 'implementation');
  const action = openAction(s, args.actionId);
  if (!holds(action.owner, args.actor)) refuse(FailureType.NotAssignee, `action ${action.id} is held by ${assigneeKey(action.owner)}`);
  requireText(args.evidence?.text, 'evidence');
}

export function validateExtensionRequest(s: CapaState, args: ExtensionRequestArgs): void {
  requireProof(args);
  requireStage(s, 'implementation');
  const action = openAction(s, args.actionId);
  if (!holds(action.owner, args.actor)) refuse(FailureType.NotAssignee, `only the owner of ${action.id} may ask for more time`);
  if (action.extensionRequest) refuse(FailureType.DuplicateDecision, `an extension of ${action.id} is already waiting for QA`);
  if (action.extensions >= s.maxExtensions)
    refuse(FailureType.ExtensionLimit, `${action.id} has had its ${s.maxExtensions} extension(s); no more are allowed`);
  requireText(args.reason, 'a reason');
  const due = Date.parse(args.dueAt);
  if (Number.isNaN(due) || due <= Date.parse(action.dueAt))
    refuse(FailureType.InvalidInput, `the new due date must be later than ${action.dueAt}`);
}

export function validateExtensionDecision(s: CapaState, args: ExtensionDecisionArgs): void {
  requireProof(args);
  requireStage(s, 'implementation');
  requireQa(args.actor, 'decide an extension');
  const action = openAction(s, args.actionId);
  if (!action.extensionRequest) refuse(FailureType.WrongStage, `no extension of ${action.id} is waiting for a decision`);
  if (holds(action.owner, args.actor) && action.owner.kind === 'user')
    refuse(FailureType.Forbidden, 'an action owner cannot grant their own extension');
  if (args.approve && action.extensions >= s.maxExtensions)
    refuse(FailureType.ExtensionLimit, `${action.id} has had its ${s.maxExtensions} extension(s)`);
  requireText(args.reason, 'a reason');
}

export function validateEffectiveness(s: CapaState, args: EffectivenessArgs): void {
  requireProof(args);
  requireStage(s, 'effectiveness_review');
  if (latestPassed(s)) refuse(FailureType.DuplicateDecision, 'effectiveness has already been verified; the CAPA waits for closure');
  const { actor } = args;
  if (!actor.roles.some((r) => r === 'qa_manager' || r === 'lab_director'))
    refuse(FailureType.Forbidden, 'effectiveness is verified by a QA manager or lab director');
  const actions = s.plan?.actions ?? [];
  const criteria = s.plan?.criteria ?? [];
  const implemented = actions.filter(
    (x) => x.completedBy?.userId === actor.userId || (x.owner.kind === 'user' && x.owner.userId === actor.userId),
  );
  if (implemented.length)
    refuse(
      FailureType.Forbidden,
      `${actor.username} implemented ${implemented.map((x) => x.id).join(', ')} and cannot verify their own work`,
    );
  const missing = criteria.filter((c) => !args.results.some((r) => r.criterionId === c.id));
  if (missing.length) refuse(FailureType.InvalidInput, `results are missing for ${missing.map((c) => c.id).join(', ')}`);
  const unknown = args.results.filter((r) => !criteria.some((c) => c.id === r.criterionId));
  if (unknown.length) refuse(FailureType.InvalidInput, `no criterion ${unknown.map((r) => r.criterionId).join(', ')}`);
  for (const r of args.results) requireText(r.evidence, `evidence for ${r.criterionId}`);
}

export const supplierSources = (s: CapaState): string[] => s.sources.filter((src) => src.type === 'supplier').map((src) => src.id);

export function validateClose(s: CapaState, args: CloseArgs): void {
  requireProof(args);
  requireQa(args.actor, 'close a CAPA');
  if (s.stage === 'closed') refuse(FailureType.WrongStage, `${s.number} is already closed`);
  const open = openActions(s);
  if (open.length) refuse(FailureType.ActionsOpen, `${s.number} cannot close while actions are open: ${open.map((x) => x.id).join(', ')}`);
  if (s.stage !== 'effectiveness_review' || !latestPassed(s))
    refuse(FailureType.EffectivenessMissing, `${s.number} has no passing effectiveness check to close on (it is ${s.stage})`);
  if (!args.signature) refuse(FailureType.InvalidInput, 'closure must be signed');
  if (args.signature.contentHash !== s.closureContentHash)
    refuse(FailureType.StaleContentHash, `the closure record changed since it was read: its hash is ${s.closureContentHash}`);
  if (args.supplierAction && !supplierSources(s).length)
    refuse(FailureType.InvalidInput, `${s.number} names no supplier to ${args.supplierAction}`);
  if (args.suppliers && !args.supplierAction) refuse(FailureType.InvalidInput, 'suppliers are named only with a supplier verdict');
  if (args.supplierAction) {
    // A verdict names the suppliers it is for, each one a supplier this CAPA names; no other is touched.
    if (!args.suppliers?.length) refuse(FailureType.InvalidInput, `name the supplier(s) to ${args.supplierAction}`);
    const foreign = args.suppliers.filter((name) => !supplierSources(s).includes(name));
    if (foreign.length) refuse(FailureType.InvalidInput, `${s.number} does not name ${foreign.join(', ')} as a supplier source`);
  }
}

export function validateCancel(s: CapaState, args: ReasonArgs): void {
  requireProof(args);
  if (FINISHED.includes(s.stage)) refuse(FailureType.WrongStage, `${s.number} is ${s.stage}; only an open CAPA can be cancelled`);
  requireQa(args.actor, 'cancel a CAPA');
  requireText(args.reason, 'a reason');
}

export function validateReopen(s: CapaState, args: ReasonArgs): void {
  requireProof(args);
  requireStage(s, 'closed');
  requireQa(args.actor, 'reopen a CAPA');
  requireText(args.reason, 'a reason');
}

/** A person links sources through the API: the CAPA's owner or a QA manager, with a grant. */
export function validateLinkSources(s: CapaState, args: LinkSourcesArgs): void {
  requireProof(args);
  if (FINISHED.includes(s.stage)) refuse(FailureType.WrongStage, `${s.number} is ${s.stage}; link the source to an open CAPA`);
  if (!holds(s.owner, args.actor) && !args.actor.roles.includes('qa_manager'))
    refuse(FailureType.Forbidden, `only the owner of ${s.number} or a QA manager may link sources to it`);
  if (!Array.isArray(args.sources) || !args.sources.length) refuse(FailureType.InvalidInput, 'name at least one source');
}
