/**
 * Action grants: the API's proof, kept in Postgres, that it authenticated a person for one action on one run.
 * Runs carry only the grant's ID; the activity that records the action checks and consumes the grant. This module
 * is imported by workflow code, so it holds only what is deterministic: the ID's shape and the action names.
 */

/** 32 random bytes, base64url: the ID alone is the capability, so it must not be guessable. */
const GRANT_ID = /^[A-Za-z0-9_-]{43}$/;

export function isGrantId(value: unknown): value is string {
  return typeof value === 'string' && GRANT_ID.test(value);
}

/** The actions of document approval that record a person's doing; a grant is for exactly one of them. */
export const DOCUMENT_ACTIONS = [
  'document.submit',
  'document.decide',
  'document.withdraw',
  'document.reassign',
  'document.extend_due',
  'document.upload_revision',
  'document.obsolete',
  'document.complete_periodic_review',
] as const;
export type DocumentAction = (typeof DOCUMENT_ACTIONS)[number];

/**
 * An action a grant is for: "<process>.<action>". Each process lists its own actions next to its arguments
 * (document approval's are here; the others' in common/<process>.ts).
 */
export type GrantAction = `${string}.${string}`;

/**
 * What a grant binds, per action: the arguments the run will record, in the form both the API (when it writes the
 * grant) and the recording activity (when it consumes it) can build from what each holds. Anything else the
 * caller sends is display only.
 */
export const grantedArgs = {
  submit: (a: {
    versionId: string;
    contentHash: string;
    routing: unknown;
    reminderBefore: string;
    periodicReview: string;
    effectiveDate?: string;
  }) => ({
    versionId: a.versionId,
    contentHash: a.contentHash,
    routing: a.routing,
    reminderBefore: a.reminderBefore,
    periodicReview: a.periodicReview,
    effectiveDate: a.effectiveDate ?? null,
  }),
  decide: (a: { decision: string; comment?: string; signature?: { meaning: string; contentHash: string; signedAt: string } }) => ({
    decision: a.decision,
    comment: a.comment ?? null,
    signature: a.signature ? { meaning: a.signature.meaning, contentHash: a.signature.contentHash, signedAt: a.signature.signedAt } : null,
  }),
  withdraw: (a: { reason: string }) => ({ reason: a.reason }),
  obsolete: (a: { reason: string }) => ({ reason: a.reason }),
  reassign: (a: { from: string; to: string; reason: string }) => ({ from: a.from, to: a.to, reason: a.reason }),
  /** The due date as the instant it names, so '…Z' and '+00:00' spellings bind the same moment. */
  extendDue: (a: { dueAt: string; reason: string }) => ({ dueAt: new Date(Date.parse(a.dueAt)).toISOString(), reason: a.reason }),
  uploadRevision: (a: { contentHash: string }) => ({ contentHash: a.contentHash }),
  completePeriodicReview: (a: { comment: string }) => ({ comment: a.comment }),
};
