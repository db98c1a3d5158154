import type { AssigneeRef } from '../common/assignees';
import type {
  ActionType,
  CapaAction,
  CapaOutcome,
  CapaSource,
  CapaStage,
  EffectivenessCriterion,
  EffectivenessRecord,
  RootCauseMethod,
  TriageArgs,
} from '../common/capa';
import type { Actor } from '../common/roles';
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
  | { kind: 'triage'; body: Omit<TriageArgs, 'actor'> }
  | { kind: 'containment'; body: { summary: string; actions: string[] } }
  | { kind: 'investigation'; body: { method: RootCauseMethod; rootCause: string; findings: string } }
  | { kind: 'plan'; body: { actions: PlannedAction[]; criteria: EffectivenessCriterion[]; contentHash: string } }
  | { kind: 'action_evidence'; body: { actionId: string; text: string; attachments: string[] } }
  | { kind: 'effectiveness'; body: EffectivenessRecord }
);

/** An action as the plan fixed it, without the run's reminder bookkeeping. */
export type PlannedAction = Omit<CapaAction, 'reminded' | 'escalated'>;

export type CapaAuditAction =
  | 'capa.initiated'
  | 'capa.triaged'
  | 'capa.merged'
  | 'capa.unfounded'
  | 'capa.contained'
  | 'capa.root_cause_recorded'
  | 'capa.plan_submitted'
  | 'capa.plan_rejected'
  | 'capa.plan_approved'
  | 'capa.action_completed'
  | 'capa.extension_requested'
  | 'capa.extension_granted'
  | 'capa.extension_refused'
  | 'capa.effectiveness_due'
  | 'capa.effectiveness_passed'
  | 'capa.effectiveness_failed'
  | 'capa.closed'
  | 'capa.cancelled'
  | 'capa.reopened'
  | 'capa.sources_linked'
  | 'capa.reassigned'
  | 'capa.reminder'
  | 'capa.overdue';

/**
 * One step of a CAPA as the run decided it, written in one transaction: the projection row, sources, actions, what
 * a person recorded, a signature, inbox tasks, the audit event and the notifications it causes. The idempotency
 * keys come from the activity, so a retried step writes nothing twice.
 */
export interface CapaStep {
  capa: CapaRef;
  rev: number;
  projection: CapaProjection;
  audit: { action: CapaAuditAction; actor?: Actor; by?: string; details: Record<string, unknown> };
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
}
