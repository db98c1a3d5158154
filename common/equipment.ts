import { defineQuery, defineUpdate } from '@temporalio/workflow';
import type { Actor } from './roles';
import type { SignatureInput } from './signatures';

/**
 * An instrument's life in the lab (ISO/IEC 17025 6.4), one long-lived run per instrument, `instrument:<code>`:
 * commissioning → in_service ⇄ out_of_service → retired. It is out of service for a set of reasons; usable means
 * in service with no reason and a calibration certificate valid now. The run carries IDs, dates and flags only;
 * certificates, QC, defects, maintenance and repairs are described in Postgres. Bundle-safe.
 */
export const INSTRUMENT_STATES = ['commissioning', 'in_service', 'out_of_service', 'retired'] as const;
export type InstrumentStateName = (typeof INSTRUMENT_STATES)[number];

export const OUT_OF_SERVICE_REASONS = ['calibration_expired', 'qc_failed', 'maintenance', 'defect', 'validation'] as const;
export type OutOfServiceReason = (typeof OUT_OF_SERVICE_REASONS)[number];

/** The reasons a person's verification record clears when they return the instrument to service (17025 6.4.4). */
export const CLEARED_BY_VERIFICATION: readonly OutOfServiceReason[] = ['defect', 'validation'];

/** Lead times before a certificate's end at which QA is reminded, unless an instrument names its own. */
export const DEFAULT_CALIBRATION_REMINDERS = ['30d', '7d', '1d'];

export interface CertificateRef {
  id: string;
  validFrom: string;
  validTo: string;
}

export interface MaintenancePlanRef {
  id: string;
  dueAt: string;
  notified: boolean;
  /** Maintenance under way for this plan: finishing it marks the plan done. */
  started: boolean;
  done: boolean;
}

export interface InstrumentInput {
  instrumentId: string;
  code: string;
  /** Durations before a certificate's end ('30d', '7d'; tests pass seconds). */
  reminderBefore: string[];
  /** Continue as new once the history has this many events (Temporal's own suggestion applies regardless). */
  continueAsNewAfter?: number;
  /** The state carried over by continue-as-new. */
  resume?: { snapshot: InstrumentState; continuedRuns: number };
}

export interface InstrumentState {
  workflowId: string;
  instrumentId: string;
  code: string;
  state: InstrumentStateName;
  reasons: OutOfServiceReason[];
  /**
   * Whether going back into service needs a person's verification record: set by anything but a lapsed
   * certificate (whose renewal is itself the check) and by commissioning.
   */
  verificationRequired: boolean;
  certificate: CertificateRef | null;
  /** Lead times before a certificate's end at which QA is reminded. */
  reminderBefore: string[];
  /** `<certificate ID>:<lead time>` of the reminders already sent (Postgres keeps them too, and refuses a second). */
  remindersSent: string[];
  plans: MaintenancePlanRef[];
  /** The CAPA runs opened or linked by this instrument's failed QC and defects. */
  capas: string[];
  continuedRuns: number;
}

interface Proven {
  actor: Actor;
  grant: string;
}

export interface CalibrationFacts {
  certificateNumber: string;
  validFrom: string;
  validTo: string;
  documentHash: string;
  /** The calibration's results and corrections, as the certificate states them. */
  results: string;
  /** The username of who prepared the certificate's record; never its reviewer. */
  preparedBy: string;
}
export interface VerificationRecord {
  summary: string;
  documentHash: string;
}

export type RecordCalibrationArgs = Proven & CalibrationFacts & { signature: SignatureInput };
export type RecordQcArgs = Proven & { passed: boolean; material: string; note?: string };
export type ReportDefectArgs = Proven & { description: string };
export type StartMaintenanceArgs = Proven & { description: string; planId?: string };
export type FinishMaintenanceArgs = Proven & { outcome: string };
export type PlanMaintenanceArgs = Proven & { description: string; dueAt: string };
export type ReturnToServiceArgs = Proven & { verification?: VerificationRecord };
export type RetireArgs = Proven & { reason: string };

export const instrumentStateQuery = defineQuery<InstrumentState>('instrumentState');
export const recordCalibrationUpdate = defineUpdate<InstrumentState, [RecordCalibrationArgs]>('recordCalibration');
export const recordQcUpdate = defineUpdate<InstrumentState, [RecordQcArgs]>('recordQc');
export const reportDefectUpdate = defineUpdate<InstrumentState, [ReportDefectArgs]>('reportDefect');
export const startMaintenanceUpdate = defineUpdate<InstrumentState, [StartMaintenanceArgs]>('startMaintenance');
export const finishMaintenanceUpdate = defineUpdate<InstrumentState, [FinishMaintenanceArgs]>('finishMaintenance');
export const planMaintenanceUpdate = defineUpdate<InstrumentState, [PlanMaintenanceArgs]>('planMaintenance');
export const returnToServiceUpdate = defineUpdate<InstrumentState, [ReturnToServiceArgs]>('returnToService');
export const retireInstrumentUpdate = defineUpdate<InstrumentState, [RetireArgs]>('retireInstrument');

export const INSTRUMENT_ACTIONS = [
  'instrument.calibrate',
  'instrument.qc',
  'instrument.report_defect',
  'instrument.start_maintenance',
  'instrument.finish_maintenance',
  'instrument.plan_maintenance',
  'instrument.return_to_service',
  'instrument.retire',
] as const;
export type InstrumentAction = (typeof INSTRUMENT_ACTIONS)[number];

const LAB = ['lab_technician', 'lab_director', 'qa_manager'];
const RESPONSIBLE = ['qa_manager', 'lab_director'];
/** Who may take each action: the bench runs QC and reports defects; QA or the lab director answer for service. */
export const INSTRUMENT_ACTION_ROLES: Record<InstrumentAction, readonly string[]> = {
  'instrument.calibrate': RESPONSIBLE,
  'instrument.qc': LAB,
  'instrument.report_defect': LAB,
  'instrument.start_maintenance': LAB,
  'instrument.finish_maintenance': LAB,
  'instrument.plan_maintenance': RESPONSIBLE,
  'instrument.return_to_service': RESPONSIBLE,
  'instrument.retire': RESPONSIBLE,
};
/** Who may register an instrument. */
export const INSTRUMENT_REGISTRARS = RESPONSIBLE;
/** Who may prepare a calibration certificate's record (its reviewer must be someone else). */
export const CALIBRATION_PREPARERS = LAB;

export const mayInstrumentAction = (action: InstrumentAction, roles: readonly string[]) =>
  INSTRUMENT_ACTION_ROLES[action].some((role) => roles.includes(role));

/** The instant an ISO 8601 text names, so '…Z' and '+00:00' spellings bind the same moment. */
const instant = (value: unknown) => (typeof value === 'string' && !Number.isNaN(Date.parse(value)) ? new Date(Date.parse(value)).toISOString() : null);

/** What a grant binds per action: the arguments the run records, built alike by the API and the recording step. */
export function boundInstrumentArgs(action: InstrumentAction, request: unknown): unknown {
  const r = (request ?? {}) as Record<string, unknown> & { signature?: SignatureInput; verification?: VerificationRecord };
  switch (action) {
    case 'instrument.calibrate':
      return {
        certificateNumber: r.certificateNumber ?? null,
        validFrom: instant(r.validFrom),
        validTo: instant(r.validTo),
        documentHash: r.documentHash ?? null,
        results: r.results ?? null,
        preparedBy: r.preparedBy ?? null,
        signature: r.signature ? { meaning: r.signature.meaning, contentHash: r.signature.contentHash, signedAt: r.signature.signedAt } : null,
      };
    case 'instrument.qc':
      return { passed: r.passed ?? null, material: r.material ?? null, note: r.note ?? null };
    case 'instrument.report_defect':
      return { description: r.description ?? null };
    case 'instrument.start_maintenance':
      return { description: r.description ?? null, planId: r.planId ?? null };
    case 'instrument.finish_maintenance':
      return { outcome: r.outcome ?? null };
    case 'instrument.plan_maintenance':
      return { description: r.description ?? null, dueAt: instant(r.dueAt) };
    case 'instrument.return_to_service':
      return { verification: r.verification ? { summary: r.verification.summary, documentHash: r.verification.documentHash } : null };
    case 'instrument.retire':
      return { reason: r.reason ?? null };
  }
}

/** What the reviewer of a calibration certificate signs: its facts as recorded (canonical field order). */
export const calibrationContent = (c: CalibrationFacts) => ({
  certificateNumber: c.certificateNumber,
  validFrom: instant(c.validFrom),
  validTo: instant(c.validTo),
  documentHash: c.documentHash,
  results: c.results,
  preparedBy: c.preparedBy,
});

/** Why a certificate's validity cannot be recorded, or null. */
export function validityProblem(validFrom: string, validTo: string): string | null {
  const from = Date.parse(validFrom);
  const to = Date.parse(validTo);
  if (Number.isNaN(from) || Number.isNaN(to)) return 'a certificate names when it is valid from and to';
  if (to <= from) return 'the certificate’s validity ends before (or as) it starts';
  return null;
}

/** Usable: in service, no reason to be out of it, and a certificate valid at this instant. */
export function isUsable(s: Pick<InstrumentState, 'state' | 'reasons' | 'certificate'>, now: number): boolean {
  return s.state === 'in_service' && s.reasons.length === 0 && !!s.certificate && Date.parse(s.certificate.validTo) > now;
}
