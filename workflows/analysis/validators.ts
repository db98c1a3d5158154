import { FailureType, refuse } from '../../common/failures';
import type { Role } from '../../common/roles';
import {
  FINAL_ANALYSIS_STATES,
  verificationRefusal,
  type AnalysisState,
  type AnalysisStateName,
  type EnterResultArgs,
  type ReasonArgs,
  type ReleaseArgs,
  type VerifyArgs,
} from '../../common/results';
import { requireProof, requireRole, requireState, requireText } from '../lib';

/**
 * What an Update may not do to an analysis, refused before it enters history. Each first requires its proof (an
 * actor and a grant ID); the recording activity checks the grant and the roles again against Postgres.
 */
const LAB: Role[] = ['lab_technician', 'lab_director'];

function requireIn(a: AnalysisState, ...allowed: AnalysisStateName[]): void {
  if (a.frozen) refuse(FailureType.RunFinished, `${a.test} of ${a.accession} was retested (${a.retestedBy}); it is frozen`);
  requireState(`${a.test} of ${a.accession}`, a.state, allowed, FINAL_ANALYSIS_STATES);
}

export function validateEntry(a: AnalysisState, args: EnterResultArgs): void {
  requireProof(args);
  requireRole(args.actor, LAB);
  requireIn(a, 'pending', 'resulted');
  if (typeof args.entryId !== 'string' || !/^[0-9a-f-]{36}$/.test(args.entryId))
    refuse(FailureType.InvalidInput, 'an entry ID is required');
}

export function validateSubmit(a: AnalysisState, args: unknown): void {
  requireProof(args);
  requireRole(args.actor, LAB);
  requireIn(a, 'resulted');
}

export function validateVerify(a: AnalysisState, args: VerifyArgs): void {
  requireProof(args);
  requireRole(args.actor, LAB);
  requireIn(a, 'to_be_verified');
  if (!args.signature?.meaning || !args.signature.contentHash) refuse(FailureType.InvalidInput, 'a verification is signed');
  if (!a.policy) refuse(FailureType.WrongStage, 'the test has no verification policy yet');
  const refusal = verificationRefusal(a.policy, a.enteredBy, a.verifiedBy, args.actor.userId);
  if (refusal) refuse(FailureType.VerificationRefused, `${refusal.rule}: ${refusal.message}`);
}

export function validateRelease(a: AnalysisState, args: ReleaseArgs): void {
  requireProof(args);
  requireRole(args.actor, ['lab_director'], { what: 'the lab director releases a result' });
  requireIn(a, 'verified');
  if (!args.signature?.meaning || !args.signature.contentHash) refuse(FailureType.InvalidInput, 'a release is signed');
}

/** An action that ends an analysis with a reason, from the states it may end in. */
const withReason =
  (...allowed: AnalysisStateName[]) =>
  (a: AnalysisState, args: ReasonArgs): void => {
    requireProof(args);
    requireRole(args.actor, LAB);
    requireIn(a, ...allowed);
    requireText(args.reason, 'a reason');
  };
export const validateRetract = withReason('resulted', 'to_be_verified', 'verified');
export const validateReject = withReason('to_be_verified');
export const validateCancel = withReason('pending', 'resulted', 'to_be_verified');

export function validateRetest(a: AnalysisState, args: unknown): void {
  requireProof(args);
  requireRole(args.actor, LAB);
  requireIn(a, 'resulted', 'to_be_verified', 'verified');
}
