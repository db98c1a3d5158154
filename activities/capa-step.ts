import type { AssigneeRef } from '../common/assignees';
import type {
  ActionType,
  CapaAction,
  CapaOutcome,
  CapaSource,
  CapaStage,
  EffectivenessCriterion,
  EffectivenessRecord,
  Risk,
  RootCauseMethod,
  TriageArgs,
} from '../common/capa';
import type { CapaGrantAction, CapaMay } from '../common/capa-grants';
import type { Actor } from '../common/roles';
import type { SupplierDecision } from '../common/supplier-qualification';
import type { SignatureInput } from '../common/signatures';
import type { CapaActionRow, CapaProjection } from '../db/capa';
import type { TaskEnd } from '../db/tasks';

export interface CapaRef {
  workflowId: string;
  number: string;
  title: string;
}

export type { CapaActionRow, CapaProjection } from '../db/capa';

/** What an inbox task asks for; the activity words its title. */
export type CapaTaskSubject =
  | { what: 'triage' | 'containment' | 'investigation' | 'plan_approval' | 'effectiveness' | 'closure' }
  | { what: 'action'; actionId: string; actionType: ActionType }
  | { what: 'extension'; actionId: string; request: number };

/** A notification as facts: who hears of what. The activity words it. */
export type CapaNotice = { to: AssigneeRef[] } & (
  | { kind: 'capa.triage'; initiatedBy: string }
  | { kind: 'capa.assigned'; containBy: string }
  | { kind: 'capa.closed'; outcome: CapaOutcome; atTriage: boolean }
  | { kind: 'capa.cancelled'; reason: string }
  | { kind: 'capa.reopened'; reason: string }
  | { kind: 'capa.plan_submitted' }
  | { kind: 'capa.plan_rejected'; comment: string }
  | { kind: 'capa.action_assigned'; actionId: string; actionType: ActionType; description: string; dueAt: string }
  | { kind: 'capa.extension_requested'; actionId: string; dueAt: string; reason: string; requestedBy: string }
  | { kind: 'capa.extension_decided'; actionId: string; granted: boolean; dueAt: string; reason: string }
  | { kind: 'capa.effectiveness_due' }
  | { kind: 'capa.ready_to_close' }
  | { kind: 'capa.effectiveness_failed'; comment: string }
  | { kind: 'capa.reminder'; what: string; dueAt: string }
  | { kind: 'capa.overdue'; what: string; dueAt: string; holder: string }
  | { kind: 'capa.reassigned'; from: string; moved: string[] }
);

/** What a person recorded at a stage, kept in capa_records as the round's evidence. */
export type CapaRecordEntry = { round: number; by: string } & (
  | { kind: 'initiation'; body: { title: string; description: string; sources: CapaSource[] } }
  | { kind: 'triage'; body: Omit<TriageArgs, 'actor' | 'grant'> }
  | { kind: 'containment'; body: { summary: string; actions: string[] } }
  | { kind: 'investigation'; body: { method: RootCauseMethod; rootCause: string; findings: string } }
  | { kind: 'plan'; body: { actions: PlannedAction[]; criteria: EffectivenessCriterion[]; contentHash: string } }
  | { kind: 'action_evidence'; body: { actionId: string; text: string; attachments: string[] } }
  | { kind: 'effectiveness'; body: EffectivenessRecord }
);

/** An action as the plan fixed it, without the run's reminder bookkeeping. */
export type PlannedAction = Omit<CapaAction, 'reminded' | 'escalated'>;

/** The audit event of a step: what happened and the facts that event keeps, by a person or by the run itself. */
export type CapaAudit = { actor?: Actor; by?: string } & (
  | { action: 'capa.initiated'; details: { title: string; sources: string[] } }
  | { action: 'capa.triaged'; details: { decision: 'accept'; risk: Risk | null; owner: string; dueAt: string } }
  | { action: 'capa.merged' | 'capa.unfounded'; details: { reason?: string; mergedInto: string | null } }
  | { action: 'capa.contained'; details: { containmentActions: number; investigationDueAt: string } }
  | { action: 'capa.root_cause_recorded'; details: { method: RootCauseMethod } }
  | { action: 'capa.plan_submitted'; details: { actions: number; criteria: number; contentHash: string } }
  | { action: 'capa.plan_rejected'; details: { comment?: string; rejectedRound: number } }
  | { action: 'capa.plan_approved'; details: { contentHash: string } }
  | { action: 'capa.action_completed'; details: { actionId: string; attachments: string[]; effectivenessDueAt?: string | null } }
  | { action: 'capa.extension_requested'; details: { actionId: string; dueAt: string; reason: string } }
  | {
      action: 'capa.extension_granted' | 'capa.extension_refused';
      details: { actionId: string; dueAt: string; extensions: number; reason: string };
    }
  | { action: 'capa.effectiveness_due'; details: { criteria: string[] } }
  | {
      action: 'capa.effectiveness_passed' | 'capa.effectiveness_failed';
      details: { verifiedRound: number; results: { criterionId: string; met: boolean }[] };
    }
  | {
      action: 'capa.closed';
      details: { outcome: 'effective'; comment: string | null; supplierAction?: SupplierDecision; suppliers?: string[]; via?: string };
    }
  | { action: 'capa.cancelled'; details: { reason: string } }
  | { action: 'capa.reopened'; details: { reason: string; previousClosedAt: string | null } }
  | { action: 'capa.sources_linked'; details: { sources: string[] } }
  | { action: 'capa.reassigned'; details: { from: string; to: string; what: string[]; reason: 'user deactivated' } }
  | { action: 'capa.reminder' | 'capa.overdue'; details: { what: string; holder: string; dueAt: string } }
);

/**
 * What a step that records a request proves it with; the activity checks it in the step's transaction and writes
 * nothing when it does not hold.
 * - `grant`: a person's Update; the grant the API wrote binds the arguments (and a signature's meaning and hash to a
 *   password check); `may` is who may act as the run's state says, judged on the user as Postgres knows them.
 * - `process_link`: another labflow process links its records (sample intake's CAPA request, a merged CAPA).
 * - `user_deactivated`: the run was told a user was deactivated; believed when Postgres shows them inactive.
 */
export type CapaProof =
  | {
      kind: 'grant';
      action: CapaGrantAction;
      grant: string;
      actor: Actor;
      args: unknown;
      may: CapaMay;
      signature?: { meaning: string; contentHash: string };
    }
  | { kind: 'process_link'; by: string; sources: CapaSource[] }
  | { kind: 'user_deactivated'; userId: string };

/**
 * One step of a CAPA as the run decided it, written in one transaction: the projection row, sources, actions, what
 * a person recorded, a signature, inbox tasks, the audit event and the notifications it causes. The idempotency
 * keys come from the activity, so a retried step writes nothing twice.
 */
export interface CapaStep {
  capa: CapaRef;
  rev: number;
  projection: CapaProjection;
  audit: CapaAudit;
  sources?: { sources: CapaSource[]; by: string };
  actions?: CapaActionRow[];
  record?: CapaRecordEntry;
  signature?: { round: number; stage: CapaStage; stageIndex: number; actor: Actor; signature: SignatureInput };
  closeTasks?: { prefix: string; state: TaskEnd; by?: string }[];
  /** Open tasks whose due date moved (an extension was granted). */
  retimeTasks?: { prefix: string; dueAt: string }[];
  openTasks?: { key: string; subject: CapaTaskSubject; assignee: AssigneeRef; dueAt: string | null }[];
  notify?: CapaNotice[];
  /** Users to check: those no longer active are returned, so the run can hand their work to the QA manager. */
  checkActive?: string[];
  /** The proof of the request this step records; absent for the run's own steps (initiation, reminders). */
  proof?: CapaProof;
}
