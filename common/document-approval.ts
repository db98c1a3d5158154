import type { AssigneeRef } from './assignees';
import { defineQuery, defineSignal, defineUpdate } from '@temporalio/workflow';
import type { Actor } from './roles';
import type { SignatureInput } from './signatures';

export type { SignatureInput } from './signatures';

export type StageRule = { type: 'all' } | { type: 'any' } | { type: 'k_of_n'; k: number };

export interface RoutingStage {
  name: string;
  rule: StageRule;
  assignees: AssigneeRef[];
  /** How long the stage may take before it is overdue, e.g. '72h'. */
  due: string;
}

export interface DocumentApprovalInput {
  documentId: string;
  documentNumber: string;
  title: string;
  versionId: string;
  version: number;
  author: { userId: string; username: string };
  contentHash: string;
  routing: RoutingStage[];
  /** Reminder sent this long before a stage is due. */
  reminderBefore: string;
  /** ISO date-time at which an approved version becomes effective; immediately when absent or past. */
  effectiveDate?: string;
  /** Interval between periodic reviews of the effective version. */
  periodicReview: string;
  submittedBy: string;
  /** The grant the API wrote for the submission; the run's first recording step consumes it. */
  submissionGrant?: string;
  /** Set when the run continues as new while the version is effective. */
  resume?: { snapshot: DocumentApprovalState; reviewCycle: number };
}

export const VERSION_STATES = [
  'draft',
  'in_review',
  'changes_requested',
  'approved',
  'effective',
  'superseded',
  'obsolete',
  'rejected',
  'withdrawn',
] as const;
export type VersionState = (typeof VERSION_STATES)[number];
export const OPEN_VERSION_STATES: VersionState[] = ['draft', 'in_review', 'changes_requested', 'approved'];
export const FINAL_VERSION_STATES: VersionState[] = ['superseded', 'obsolete', 'rejected', 'withdrawn'];

export type DecisionKind = 'approve' | 'reject' | 'request_changes';

export interface Decision {
  kind: DecisionKind;
  userId: string;
  username: string;
  printedName: string;
  at: string;
  comment?: string;
  meaning?: string;
}

export interface Slot {
  assignee: AssigneeRef;
  decision?: Decision;
}

export type StageStatus = 'pending' | 'active' | 'approved' | 'rejected' | 'changes_requested' | 'cancelled';

export interface StageState {
  name: string;
  rule: StageRule;
  due: string;
  status: StageStatus;
  slots: Slot[];
  dueAt?: string;
  reminded: boolean;
  escalated: boolean;
}

export interface DocumentApprovalState {
  workflowId: string;
  documentNumber: string;
  version: number;
  state: VersionState;
  round: number;
  contentHash: string;
  currentStage: number | null;
  stages: StageState[];
  dueAt: string | null;
  pendingAssignees: string[];
  effectiveDate: string | null;
  effectiveAt: string | null;
  nextPeriodicReviewAt: string | null;
  periodicReviewOpen: boolean;
  outcome: { by: string; comment: string } | null;
}

export interface DecideArgs {
  /** Shown while the action is in flight; the grant, not this, says who acts. */
  actor: Actor;
  /** The single-use grant the API wrote for this action (common/grants); the recording activity consumes it. */
  grant: string;
  decision: DecisionKind;
  comment?: string;
  signature?: SignatureInput;
}
export interface WithdrawArgs {
  actor: Actor;
  grant: string;
  reason: string;
}
export interface ReassignArgs {
  actor: Actor;
  grant: string;
  from: string;
  to: AssigneeRef;
  reason: string;
}
export interface ExtendArgs {
  actor: Actor;
  grant: string;
  dueAt: string;
  reason: string;
}
export interface RevisionArgs {
  actor: Actor;
  grant: string;
  contentHash: string;
}
export interface ObsoleteArgs {
  actor: Actor;
  grant: string;
  reason: string;
}
export interface PeriodicReviewArgs {
  actor: Actor;
  grant: string;
  comment: string;
}
/**
 * Sent only by the run of the version that became effective; the superseded run acts on it only when Postgres
 * already records the supersession (written with the new version's effective state), so a forged signal is ignored.
 */
export interface SupersededArgs {
  byWorkflowId: string;
  byVersion: number;
}

export const documentStateQuery = defineQuery<DocumentApprovalState>('state');
export const decideUpdate = defineUpdate<DocumentApprovalState, [DecideArgs]>('decide');
export const withdrawUpdate = defineUpdate<DocumentApprovalState, [WithdrawArgs]>('withdraw');
export const reassignUpdate = defineUpdate<DocumentApprovalState, [ReassignArgs]>('reassign');
export const extendDueUpdate = defineUpdate<DocumentApprovalState, [ExtendArgs]>('extendDue');
export const uploadRevisionUpdate = defineUpdate<DocumentApprovalState, [RevisionArgs]>('uploadRevision');
export const obsoleteUpdate = defineUpdate<DocumentApprovalState, [ObsoleteArgs]>('obsolete');
export const completePeriodicReviewUpdate = defineUpdate<DocumentApprovalState, [PeriodicReviewArgs]>('completePeriodicReview');
export const supersededSignal = defineSignal<[SupersededArgs]>('superseded');
