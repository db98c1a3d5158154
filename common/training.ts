import { defineQuery, defineSignal, defineUpdate } from '@temporalio/workflow';
import type { Actor, Role } from './roles';
import type { SignatureInput } from './signatures';

/**
 * Training on every effective version: a requirement per document (who reads it, by when, what a revision means
 * for it), a campaign run per effective version, and one assignment run per person and version. Bundle-safe: both
 * the workflows and the API import it.
 */

/** What a revision means for the people trained on the version before it (decided by document control). */
export const TRAINING_IMPACTS = ['retrain', 'no_retraining', 'retire'] as const;
export type TrainingImpact = (typeof TRAINING_IMPACTS)[number];

/**
 * Whether the previous version's training still counts while the new version's is open: until the new assignment's
 * due date, or not at all (the person may not do the governed work until they have signed the new version).
 */
export const GRACE_POLICIES = ['until_due', 'none'] as const;
export type GracePolicy = (typeof GRACE_POLICIES)[number];

export interface TrainingRequirementInput {
  roles: Role[];
  /** How long each person has to read and sign a newly effective version, e.g. '14d'. */
  due: string;
  /** The reminder goes this long before the due date. */
  reminderBefore: string;
  /** What a revision means when document control does not say: retrain (true) or no retraining needed (false). */
  retrainOnRevision: boolean;
  grace: GracePolicy;
}

/** The signature meaning of a training sign-off (21 CFR 11.50): the signer read and understood the version. */
export const READ_AND_UNDERSTOOD = 'read_and_understood';

export const ASSIGNMENT_STATES = ['assigned', 'completed', 'superseded', 'cancelled'] as const;
export type AssignmentStatus = (typeof ASSIGNMENT_STATES)[number];

/** Why an open assignment ended without a sign-off; each is believed only when Postgres bears it out. */
export const ASSIGNMENT_ENDINGS = ['superseded', 'role_removed', 'user_deactivated', 'requirement_retired'] as const;
export type AssignmentEnding = (typeof ASSIGNMENT_ENDINGS)[number];

export const trainingIds = {
  campaign: (documentNumber: string, version: number) => `training-campaign:${documentNumber}:v${version}`,
  assignment: (username: string, documentNumber: string, version: number) => `training:${username}:${documentNumber}:v${version}`,
};

/** The action a training grant is for (common/grants' GrantAction). */
export const TRAINING_SIGN_OFF = 'training.sign_off';

/** What a sign-off's grant binds: the signature's meaning, the hash of the version's text and the time of the check. */
export const signOffGrantedArgs = (a: { signature: SignatureInput }) => ({
  signature: { meaning: a.signature.meaning, contentHash: a.signature.contentHash, signedAt: a.signature.signedAt },
});

export interface TrainingCampaignInput {
  documentId: string;
  documentNumber: string;
  versionId: string;
  version: number;
  title: string;
}

export interface CampaignState {
  documentNumber: string;
  version: number;
  stage: 'planning' | 'assigning' | 'done' | 'refused';
  impact: TrainingImpact | null;
  assigned: number;
  superseded: number;
  cancelled: number;
}

export interface TrainingAssignmentInput {
  userId: string;
  username: string;
  documentId: string;
  documentNumber: string;
  versionId: string;
  version: number;
  title: string;
  /** The run that asked for it: a campaign, or a role change. */
  requestedBy: string;
}

export interface AssignmentState {
  workflowId: string;
  username: string;
  documentNumber: string;
  version: number;
  state: AssignmentStatus | 'opening' | 'refused';
  dueAt: string | null;
  reminded: boolean;
  escalated: boolean;
  completedAt: string | null;
  endedBecause: AssignmentEnding | null;
}

export interface SignOffArgs {
  /** Shown while the action is in flight; the grant, not this, says who signs. */
  actor: Actor;
  grant: string;
  signature: SignatureInput;
}

export const campaignStateQuery = defineQuery<CampaignState>('state');
export const assignmentStateQuery = defineQuery<AssignmentState>('state');
export const signOffUpdate = defineUpdate<AssignmentState, [SignOffArgs]>('signOff');
/** An open assignment should end (see ASSIGNMENT_ENDINGS); the recording step checks the reason against Postgres. */
export const assignmentEndedSignal = defineSignal<[{ reason: AssignmentEnding }]>('assignmentEnded');
