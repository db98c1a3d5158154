import { ApplicationFailure } from '@temporalio/common';

/**
 * Failure types raised by workflows and activities (ApplicationFailure.type) that the API maps to HTTP answers.
 * One table, so a refusal means the same thing wherever it comes from.
 */
export const FailureType = {
  NotAssignee: 'NotAssignee',
  Forbidden: 'Forbidden',
  WrongStage: 'WrongStage',
  DuplicateDecision: 'DuplicateDecision',
  StaleContentHash: 'StaleContentHash',
  InvalidInput: 'InvalidInput',
  RunFinished: 'RunFinished',
  NotFound: 'NotFound',
  PositionTaken: 'PositionTaken',
  ActionsOpen: 'ActionsOpen',
  EffectivenessMissing: 'EffectivenessMissing',
  ExtensionLimit: 'ExtensionLimit',
  /** The action's grant was missing, used, expired or for something else: it did not come from labflow's API. */
  GrantRefused: 'GrantRefused',
  /** A verification a test's policy does not allow (self-verification, the same verifier again or twice in a row). */
  VerificationRefused: 'VerificationRefused',
  /** The gate (db/gate.ts) found the person not fit for the work: a role, training on an effective version... */
  GateRefused: 'GateRefused',
  /** A result entered on an instrument that is not usable (out of service, retired, its calibration expired). */
  InstrumentNotUsable: 'InstrumentNotUsable',
  /** An attempt on a critical-value call withdrawn because its value is no longer critical. */
  CriticalCallWithdrawn: 'CriticalCallWithdrawn',
} as const;
export type FailureType = (typeof FailureType)[keyof typeof FailureType];

export const FAILURE_HTTP_STATUS: Record<FailureType, number> = {
  NotAssignee: 403,
  Forbidden: 403,
  WrongStage: 409,
  DuplicateDecision: 409,
  StaleContentHash: 409,
  InvalidInput: 422,
  RunFinished: 409,
  NotFound: 404,
  PositionTaken: 409,
  ActionsOpen: 409,
  EffectivenessMissing: 409,
  ExtensionLimit: 409,
  GrantRefused: 403,
  VerificationRefused: 403,
  GateRefused: 403,
  InstrumentNotUsable: 409,
  CriticalCallWithdrawn: 409,
};

/**
 * Refuses an action from a workflow validator or handler: a non-retryable failure whose type the API maps. Details
 * (IDs and names only, never PHI) travel to the API, as a gate refusal's list of what is missing does.
 */
export function refuse(type: FailureType, message: string, details?: unknown[]): never {
  throw ApplicationFailure.create({ type, message, nonRetryable: true, ...(details?.length ? { details } : {}) });
}
