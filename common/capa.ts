import { defineQuery, defineSignal, defineUpdate } from '@temporalio/workflow';
import type { AssigneeRef } from './assignees';
import type { Actor } from './roles';
import type { SignatureInput } from './signatures';
import type { SupplierDecision } from './supplier-qualification';

export type { AssigneeRef } from './assignees';

/** The lifecycle of a corrective and preventive action (ISO 13485 8.5.2, 21 CFR 820.100, ISO 9001 10.2). */
export const CAPA_STAGES = [
  'initiated',
  'triage',
  'containment',
  'investigation',
  'plan_approval',
  'implementation',
  'effectiveness_wait',
  'effectiveness_review',
  'closed',
  'cancelled',
] as const;
export type CapaStage = (typeof CAPA_STAGES)[number];
export const OPEN_CAPA_STAGES: CapaStage[] = CAPA_STAGES.filter((s) => s !== 'closed' && s !== 'cancelled');

/** How a closed CAPA ended: its actions proved effective, triage found it unfounded, or it was merged into another. */
export type CapaOutcome = 'effective' | 'unfounded' | 'merged';

export const SOURCE_TYPES = ['sample', 'nonconformance', 'complaint', 'audit_finding', 'deviation', 'supplier', 'instrument', 'other'] as const;
export type SourceType = (typeof SOURCE_TYPES)[number];
/**
 * A record that gave rise to the CAPA; the record itself stays where it lives, the CAPA keeps its key. A `supplier`
 * source is the ERP supplier's name: its closure can carry QA's verdict on that supplier (CloseArgs.supplierAction).
 */
export interface CapaSource {
  type: SourceType;
  id: string;
}

export const ROOT_CAUSE_METHODS = ['five_whys', 'ishikawa', 'fault_tree', 'fmea', 'is_is_not'] as const;
export type RootCauseMethod = (typeof ROOT_CAUSE_METHODS)[number];
export const ACTION_TYPES = ['correction', 'corrective', 'preventive'] as const;
export type ActionType = (typeof ACTION_TYPES)[number];

export type RiskLevel = 'low' | 'medium' | 'high';
export interface Risk {
  severity: number;
  occurrence: number;
  score: number;
  level: RiskLevel;
}

/** Severity and occurrence are scored 1–5; their product sets the level. */
export function riskOf(severity: number, occurrence: number): Risk {
  const score = severity * occurrence;
  return { severity, occurrence, score, level: score >= 15 ? 'high' : score >= 8 ? 'medium' : 'low' };
}

export interface CapaDurations {
  containment: string;
  investigation: string;
  effectivenessWait: string;
  reminderBefore: string;
}

/**
 * Default deadlines by risk: the riskier the problem, the sooner it must be contained and understood, and the
 * longer its fix is watched before it is called effective.
 */
export const RISK_DURATIONS: Record<RiskLevel, CapaDurations> = {
  high: { containment: '2d', investigation: '14d', effectivenessWait: '90d', reminderBefore: '1d' },
  medium: { containment: '7d', investigation: '30d', effectivenessWait: '60d', reminderBefore: '2d' },
  low: { containment: '14d', investigation: '60d', effectivenessWait: '30d', reminderBefore: '3d' },
};
export const DEFAULT_MAX_EXTENSIONS = 2;
/** How long a closed CAPA's run stays open for QA to reopen it; afterwards reopening needs a new CAPA. */
export const DEFAULT_REOPEN_WINDOW = '365d';

export interface UserRef {
  userId: string;
  username: string;
}

export interface CapaAction {
  id: string;
  type: ActionType;
  description: string;
  owner: AssigneeRef;
  dueAt: string;
  state: 'open' | 'done';
  extensions: number;
  extensionRequest: { dueAt: string; reason: string; by: string; at: string } | null;
  /** Requests made so far (granted or not): names each request's inbox task. */
  extensionRequests: number;
  completedBy: UserRef | null;
  completedAt: string | null;
  evidence: { text: string; attachments: string[] } | null;
  reminded: boolean;
  escalated: boolean;
}

export interface EffectivenessCriterion {
  id: string;
  description: string;
  measure: string;
}

export interface CapaPlan {
  actions: CapaAction[];
  criteria: EffectivenessCriterion[];
  /** SHA-256 of the plan as submitted (canonical JSON); the approver signs this. */
  contentHash: string;
  submittedBy: string;
  submittedAt: string;
}

export interface SignatureManifest {
  username: string;
  printedName: string;
  meaning: string;
  signedAt: string;
  contentHash: string;
}

export interface EffectivenessRecord {
  round: number;
  verifier: string;
  passed: boolean;
  results: { criterionId: string; met: boolean; evidence: string }[];
  comment: string;
  at: string;
}

/** A loop through investigation that ended (effectiveness failed, or the CAPA was reopened), kept for the record. */
export interface CapaRound {
  round: number;
  endedBy: 'effectiveness_failed' | 'reopened' | 'plan_rejected';
  investigation: CapaState['investigation'];
  plan: CapaPlan | null;
  planApproval: SignatureManifest | null;
}

export interface StageDeadline {
  stage: CapaStage;
  dueAt: string;
  reminded: boolean;
  escalated: boolean;
}

export interface CapaState {
  workflowId: string;
  number: string;
  title: string;
  description: string;
  /** Revision of this state; each write to Postgres carries it, so a late write of an older one is ignored. */
  rev: number;
  stage: CapaStage;
  outcome: CapaOutcome | null;
  /** Increases each time the CAPA goes back to investigation (failed effectiveness, reopening). */
  round: number;
  sources: CapaSource[];
  initiatedBy: string;
  risk: Risk | null;
  owner: AssigneeRef | null;
  /** The QA manager who triaged the CAPA: escalations go to them. */
  qaManager: UserRef | null;
  durations: CapaDurations;
  maxExtensions: number;
  deadline: StageDeadline | null;
  containment: { summary: string; actions: string[]; by: string; at: string } | null;
  investigation: { method: RootCauseMethod; rootCause: string; findings: string; by: string; at: string } | null;
  plan: CapaPlan | null;
  planApproval: SignatureManifest | null;
  effectivenessDueAt: string | null;
  effectiveness: EffectivenessRecord[];
  /** What QA signs at closure: the plan's hash, each action's evidence and the passing effectiveness results. */
  closureContentHash: string | null;
  closure: (SignatureManifest & { comment: string; supplierAction?: SupplierDecision; suppliers?: string[] }) | null;
  closedAt: string | null;
  reopenUntil: string | null;
  cancellation: { by: string; reason: string; at: string } | null;
  triageDecision: { decision: 'accept' | 'unfounded' | 'merge'; by: string; reason: string; mergedInto: string | null } | null;
  reopenings: { by: string; reason: string; at: string; closedAt: string | null }[];
  previousRounds: CapaRound[];
  reassignments: { from: string; to: string; what: string; at: string }[];
  dueAt: string | null;
  pendingAssignees: string[];
}

export interface CapaInput {
  number: string;
  title: string;
  /** What went wrong, in words (no patient data: CAPAs are about processes, not patients). */
  description: string;
  sources: CapaSource[];
  initiatedBy: UserRef;
  /** Overrides of the risk-based durations (tests pass seconds). */
  durations?: Partial<CapaDurations>;
  maxExtensions?: number;
  reopenWindow?: string;
  /** Continue as new once the history has this many events (Temporal's own suggestion applies regardless). */
  continueAsNewAfter?: number;
  resume?: { snapshot: CapaState; continuedRuns: number };
}

// ----- update arguments -----
/**
 * Every Update that records a person's action names who acts and carries the ID of the single-use grant the API
 * wrote for it (common/capa-grants.ts says what each grant binds); the recording step consumes the grant.
 */
export interface Proven {
  actor: Actor;
  grant: string;
}
export interface TriageArgs extends Proven {
  decision: 'accept' | 'unfounded' | 'merge';
  severity?: number;
  occurrence?: number;
  owner?: AssigneeRef;
  reason?: string;
  mergeInto?: string;
  durations?: Partial<CapaDurations>;
}
export interface ContainmentArgs extends Proven {
  summary: string;
  actions: string[];
}
export interface InvestigationArgs extends Proven {
  method: RootCauseMethod;
  rootCause: string;
  findings: string;
}
export interface PlanArgs extends Proven {
  actions: { type: ActionType; description: string; owner: AssigneeRef; dueAt: string }[];
  criteria: { description: string; measure: string }[];
}
export interface PlanDecisionArgs extends Proven {
  decision: 'approve' | 'reject';
  signature?: SignatureInput;
  comment?: string;
}
export interface CompleteActionArgs extends Proven {
  actionId: string;
  evidence: { text: string; attachments: string[] };
}
export interface ExtensionRequestArgs extends Proven {
  actionId: string;
  dueAt: string;
  reason: string;
}
export interface ExtensionDecisionArgs extends Proven {
  actionId: string;
  approve: boolean;
  reason: string;
}
export interface EffectivenessArgs extends Proven {
  results: { criterionId: string; met: boolean; evidence: string }[];
  comment: string;
}
export interface CloseArgs extends Proven {
  signature?: SignatureInput;
  comment?: string;
  /** QA's verdict on suppliers the CAPA names, taken with the closure and applied by their qualification runs. */
  supplierAction?: SupplierDecision;
  /**
   * The suppliers the verdict is for, named explicitly (each a supplier source of the CAPA): only these hear of it.
   * Closures accepted before verdicts named their suppliers applied it to every supplier source.
   */
  suppliers?: string[];
}
export interface ReasonArgs extends Proven {
  reason: string;
}
export interface LinkSourcesArgs {
  sources: CapaSource[];
  /** Who linked them: a user's name, or the process that did (e.g. 'process:sample-intake', 'capa:CAPA-2026-0003'). */
  by: string;
  /** A person linking through the API (the Update): who, and the grant the API wrote. */
  actor?: Actor;
  grant?: string;
}

export const capaStateQuery = defineQuery<CapaState>('capaState');
export const triageUpdate = defineUpdate<CapaState, [TriageArgs]>('triage');
export const containmentUpdate = defineUpdate<CapaState, [ContainmentArgs]>('recordContainment');
export const investigationUpdate = defineUpdate<CapaState, [InvestigationArgs]>('recordInvestigation');
export const submitPlanUpdate = defineUpdate<CapaState, [PlanArgs]>('submitPlan');
export const decidePlanUpdate = defineUpdate<CapaState, [PlanDecisionArgs]>('decidePlan');
export const completeActionUpdate = defineUpdate<CapaState, [CompleteActionArgs]>('completeAction');
export const requestExtensionUpdate = defineUpdate<CapaState, [ExtensionRequestArgs]>('requestExtension');
export const decideExtensionUpdate = defineUpdate<CapaState, [ExtensionDecisionArgs]>('decideExtension');
export const effectivenessUpdate = defineUpdate<CapaState, [EffectivenessArgs]>('recordEffectiveness');
export const closeCapaUpdate = defineUpdate<CapaState, [CloseArgs]>('close');
export const cancelCapaUpdate = defineUpdate<CapaState, [ReasonArgs]>('cancel');
export const reopenCapaUpdate = defineUpdate<CapaState, [ReasonArgs]>('reopen');
export const linkSourcesUpdate = defineUpdate<CapaState, [LinkSourcesArgs]>('linkSources');
/**
 * Machine events: another process links its record (signalWithStart-free: the CAPA exists or is created first).
 * Believed only as far as Postgres bears it out: sample intake's CAPA request naming this run, or a CAPA merged
 * into this one naming those sources.
 */
export const linkSourcesSignal = defineSignal<[LinkSourcesArgs]>('linkSources');
/** A user was deactivated: whatever they hold in this CAPA goes to the QA manager (only if Postgres shows them inactive). */
export { userDeactivatedSignal } from './deactivation';

export const sourceKey = (s: CapaSource) => `${s.type}:${s.id}`;
