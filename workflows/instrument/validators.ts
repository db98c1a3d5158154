import {
  CLEARED_BY_VERIFICATION,
  validityProblem,
  type InstrumentState,
  type InstrumentStateName,
  type PlanMaintenanceArgs,
  type RecordCalibrationArgs,
  type RecordQcArgs,
  type ReturnToServiceArgs,
  type StartMaintenanceArgs,
} from '../../common/equipment';
import { FailureType, refuse } from '../../common/failures';
import type { Role } from '../../common/roles';
import { requireProof, requireRole, requireState, requireText } from '../lib';

/**
 * What an Update may not do to an instrument, refused before it enters history. Each first requires its proof (an
 * actor and a grant ID); the recording activity checks the grant, the roles and the state again against Postgres.
 */
const LAB: Role[] = ['lab_technician', 'lab_director', 'qa_manager'];
const RESPONSIBLE: Role[] = ['qa_manager', 'lab_director'];
const LIVE: InstrumentStateName[] = ['commissioning', 'in_service', 'out_of_service'];

const requireLive = (s: InstrumentState) => requireState(`instrument ${s.code}`, s.state, LIVE, ['retired']);

export function validateCalibration(s: InstrumentState, args: RecordCalibrationArgs): void {
  requireProof(args);
  requireRole(args.actor, RESPONSIBLE, { what: 'QA or the lab director review a calibration certificate' });
  requireLive(s);
  requireText(args.certificateNumber, 'the certificate number');
  requireText(args.results, "the calibration's results");
  if (typeof args.documentHash !== 'string' || !/^[0-9a-f]{64}$/.test(args.documentHash)) refuse(FailureType.InvalidInput, "the certificate document's SHA-256 is required");
  const problem = validityProblem(args.validFrom, args.validTo);
  if (problem) refuse(FailureType.InvalidInput, problem);
  requireText(args.preparedBy, 'who prepared the certificate');
  if (args.preparedBy === args.actor.username) refuse(FailureType.Forbidden, 'the reviewer of a calibration certificate is not the person who prepared it');
  if (!args.signature?.meaning || !args.signature.contentHash) refuse(FailureType.InvalidInput, 'a calibration certificate is signed by its reviewer');
}

export function validateQc(s: InstrumentState, args: RecordQcArgs): void {
  requireProof(args);
  requireRole(args.actor, LAB);
  requireLive(s);
  if (typeof args.passed !== 'boolean') refuse(FailureType.InvalidInput, 'a QC result passed or failed');
  requireText(args.material, 'the QC material');
}

export function validateDefect(s: InstrumentState, args: { description: string } & object): void {
  requireProof(args);
  requireRole(args.actor, LAB);
  requireLive(s);
  requireText(args.description, 'a description of the defect');
}

export function validateStartMaintenance(s: InstrumentState, args: StartMaintenanceArgs): void {
  requireProof(args);
  requireRole(args.actor, LAB);
  requireLive(s);
  requireText(args.description, 'what the maintenance is');
  if (s.reasons.includes('maintenance')) refuse(FailureType.WrongStage, `instrument ${s.code} is already under maintenance`);
  if (args.planId !== undefined && !s.plans.some((p) => p.id === args.planId && !p.done)) {
    refuse(FailureType.NotFound, `instrument ${s.code} has no open maintenance plan ${String(args.planId)}`);
  }
}

export function validateFinishMaintenance(s: InstrumentState, args: { outcome: string } & object): void {
  requireProof(args);
  requireRole(args.actor, LAB);
  requireLive(s);
  requireText(args.outcome, "the maintenance's outcome");
  if (!s.reasons.includes('maintenance')) refuse(FailureType.WrongStage, `instrument ${s.code} is not under maintenance`);
}

export function validatePlanMaintenance(s: InstrumentState, args: PlanMaintenanceArgs): void {
  requireProof(args);
  requireRole(args.actor, RESPONSIBLE);
  requireLive(s);
  requireText(args.description, 'what the maintenance is');
  if (typeof args.dueAt !== 'string' || Number.isNaN(Date.parse(args.dueAt))) refuse(FailureType.InvalidInput, 'a due date is required');
}

/** What still keeps the instrument out of service after a verification: reasons it does not clear, or no current certificate. */
export function serviceBlockers(s: InstrumentState, now: number): string[] {
  const left: string[] = s.reasons.filter((r) => !CLEARED_BY_VERIFICATION.includes(r));
  if (!s.certificate || Date.parse(s.certificate.validTo) <= now) {
    if (!left.includes('calibration_expired')) left.push('no_current_calibration');
  }
  return left;
}

export function validateReturnToService(s: InstrumentState, args: ReturnToServiceArgs, now: number): void {
  requireProof(args);
  requireRole(args.actor, RESPONSIBLE, { what: 'QA or the lab director return an instrument to service' });
  requireState(`instrument ${s.code}`, s.state, ['commissioning', 'out_of_service'], ['retired']);
  const v = args.verification;
  if (!v || typeof v.summary !== 'string' || !v.summary.trim() || typeof v.documentHash !== 'string' || !/^[0-9a-f]{64}$/.test(v.documentHash)) {
    refuse(FailureType.InvalidInput, 'returning an instrument to service needs a verification record (a summary and its document’s SHA-256)');
  }
  const blockers = serviceBlockers(s, now);
  if (blockers.length) refuse(FailureType.WrongStage, `instrument ${s.code} cannot return to service: ${blockers.join(', ')}`);
}

export function validateRetire(s: InstrumentState, args: { reason: string } & object): void {
  requireProof(args);
  requireRole(args.actor, RESPONSIBLE);
  requireLive(s);
  requireText(args.reason, 'a reason');
}
