/**
 * The CAPA actions an action grant can be for, what each grant binds, and who may take each action as the run
 * states it for the recording step. Imported by workflow code (bundle-safe) and by the API and the activities, so
 * the API (writing the grant) and the recording activity (consuming it) hash the very same object.
 */
import { assigneeKey, type AssigneeRef } from './assignees';
import type {
  CapaSource,
  CloseArgs,
  CompleteActionArgs,
  ContainmentArgs,
  EffectivenessArgs,
  ExtensionDecisionArgs,
  ExtensionRequestArgs,
  InvestigationArgs,
  PlanArgs,
  PlanDecisionArgs,
  ReasonArgs,
  TriageArgs,
} from './capa';
import type { Role } from './roles';

/** Every CAPA Update that records a person's doing; a grant is for exactly one of them. */
export const CAPA_ACTIONS = [
  'capa.triage',
  'capa.record_containment',
  'capa.record_investigation',
  'capa.submit_plan',
  'capa.decide_plan',
  'capa.complete_action',
  'capa.request_extension',
  'capa.decide_extension',
  'capa.record_effectiveness',
  'capa.close',
  'capa.cancel',
  'capa.reopen',
  'capa.link_sources',
] as const;
export type CapaGrantAction = (typeof CAPA_ACTIONS)[number];

/** A request without who sends it and the proof it carries: what the grant binds is built from this. */
type Bare<T> = Omit<T, 'actor' | 'grant'>;

/** The instant a date-time names, so two spellings of one moment bind the same. */
const instant = (value: string) => {
  const ms = Date.parse(value);
  return Number.isNaN(ms) ? value : new Date(ms).toISOString();
};
const signed = (s: { meaning: string; contentHash: string; signedAt: string } | undefined) =>
  s ? { meaning: s.meaning, contentHash: s.contentHash, signedAt: s.signedAt } : null;
const sourceKeys = (sources: CapaSource[]) => sources.map((s) => `${s.type}:${s.id}`);

/**
 * What a grant binds, per action: the arguments the run records, as both the API and the recording activity can
 * build them from what each holds. A signature's meaning and content hash are bound a second time by the grant's
 * password check (the recording activity claims them separately).
 */
export const capaGrantedArgs = {
  'capa.triage': (a: Bare<TriageArgs>) => ({
    decision: a.decision,
    severity: a.severity ?? null,
    occurrence: a.occurrence ?? null,
    owner: a.owner ? assigneeKey(a.owner) : null,
    reason: a.reason ?? null,
    mergeInto: a.mergeInto ?? null,
    durations: a.durations ?? null,
  }),
  'capa.record_containment': (a: Bare<ContainmentArgs>) => ({ summary: a.summary, actions: a.actions }),
  'capa.record_investigation': (a: Bare<InvestigationArgs>) => ({ method: a.method, rootCause: a.rootCause, findings: a.findings }),
  'capa.submit_plan': (a: Bare<PlanArgs>) => ({
    actions: a.actions.map((x) => ({ type: x.type, description: x.description, owner: assigneeKey(x.owner), dueAt: instant(x.dueAt) })),
    criteria: a.criteria.map((c) => ({ description: c.description, measure: c.measure })),
  }),
  'capa.decide_plan': (a: Bare<PlanDecisionArgs>) => ({ decision: a.decision, comment: a.comment ?? null, signature: signed(a.signature) }),
  'capa.complete_action': (a: Bare<CompleteActionArgs>) => ({
    actionId: a.actionId,
    evidence: { text: a.evidence.text, attachments: a.evidence.attachments },
  }),
  'capa.request_extension': (a: Bare<ExtensionRequestArgs>) => ({ actionId: a.actionId, dueAt: instant(a.dueAt), reason: a.reason }),
  'capa.decide_extension': (a: Bare<ExtensionDecisionArgs>) => ({ actionId: a.actionId, approve: a.approve, reason: a.reason }),
  'capa.record_effectiveness': (a: Bare<EffectivenessArgs>) => ({
    results: a.results.map((r) => ({ criterionId: r.criterionId, met: r.met, evidence: r.evidence })),
    comment: a.comment,
  }),
  /** The verdict and the suppliers it names are bound with the closure signature's password check. */
  'capa.close': (a: Bare<CloseArgs>) => ({
    comment: a.comment ?? null,
    supplierAction: a.supplierAction ?? null,
    suppliers: a.suppliers ? [...a.suppliers].sort() : null,
    signature: signed(a.signature),
  }),
  'capa.cancel': (a: Bare<ReasonArgs>) => ({ reason: a.reason }),
  'capa.reopen': (a: Bare<ReasonArgs>) => ({ reason: a.reason }),
  'capa.link_sources': (a: { sources: CapaSource[] }) => ({ sources: sourceKeys(a.sources) }),
} satisfies Record<CapaGrantAction, (a: never) => unknown>;

/**
 * Who may take an action, as the run states it from its own state (never from the request): the recording
 * activity judges the user as Postgres knows them against it. Holding one of `roles`, or one of the assignments in
 * `holds`, lets a user act; a user in `never` may not (an owner approving their own plan, an implementer verifying).
 */
export interface CapaMay {
  roles?: Role[];
  holds?: AssigneeRef[];
  never?: string[];
}

export function mayAct(rule: CapaMay, user: { id: string; roles: readonly Role[] }): boolean {
  if (rule.never?.includes(user.id)) return false;
  if (rule.roles?.some((role) => user.roles.includes(role))) return true;
  return (rule.holds ?? []).some((h) => (h.kind === 'user' ? h.userId === user.id : user.roles.includes(h.role)));
}
