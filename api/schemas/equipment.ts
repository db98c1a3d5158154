import { z } from 'zod';
import { INSTRUMENT_STATES, OUT_OF_SERVICE_REASONS } from '../../common/equipment';
import { boundedDuration, isoDateTime, queryInt, signatureBody, text, username } from './common';

const sha256 = z.string().regex(/^[0-9a-f]{64}$/, 'a SHA-256 hex digest');
export const instrumentCode = z.string().regex(/^[A-Z0-9][A-Z0-9_-]{1,63}$/, 'an instrument identifier such as COBAS-E411-02');

export const instrumentParams = z.object({ code: instrumentCode });

export const registerInstrumentBody = z.strictObject({
  code: instrumentCode,
  name: text(200),
  manufacturer: text(200),
  model: text(200),
  serialNumber: text(100),
  softwareVersion: text(100).optional(),
  firmwareVersion: text(100).optional(),
  location: text(200),
  /** Lead times before a certificate's end at which QA is reminded (default 30d, 7d, 1d). */
  calibrationReminders: z.array(boundedDuration()).max(5).optional(),
});

export const calibrationBody = z.strictObject({
  certificateNumber: text(100),
  validFrom: isoDateTime,
  validTo: isoDateTime,
  documentHash: sha256.describe("SHA-256 of the certificate's document: what the reviewer signs"),
  results: text(4000).describe('the calibration results and corrections as the certificate states them'),
  preparedBy: username.describe('who prepared the record (a member of the lab); never its reviewer'),
  signature: signatureBody,
});
export const qcBody = z.strictObject({ passed: z.boolean(), material: text(200), note: text(1000).optional() });
export const defectBody = z.strictObject({ description: text(2000) });
export const startMaintenanceBody = z.strictObject({ description: text(2000), planId: z.uuid().optional() });
export const finishMaintenanceBody = z.strictObject({ outcome: text(2000) });
export const planMaintenanceBody = z.strictObject({ description: text(2000), dueAt: isoDateTime });
/** The verification record is required; its absence is refused with 422 (not a malformed request). */
export const returnToServiceBody = z.strictObject({
  verification: z.strictObject({ summary: text(2000), documentHash: sha256 }).optional(),
});
export const retireBody = z.strictObject({ reason: text(1000) });

const page = { limit: queryInt(1, 200).default(50), cursor: z.string().max(200).optional() };
export const instrumentListQuery = z.object({ state: z.enum(INSTRUMENT_STATES).optional(), ...page });
export const calibrationsDueQuery = z.object({ days: queryInt(1, 3650).default(30), ...page });

/** What the equipment routes answer (route specs' `response` and the OpenAPI document). */
const calibration = z.looseObject({
  certificateNumber: z.string(),
  validFrom: z.string(),
  validTo: z.string(),
  documentHash: z.string(),
  results: z.string(),
  preparedBy: z.string(),
  reviewedBy: z.string(),
  recordedAt: z.string(),
});
export const instrumentRow = z.looseObject({
  code: z.string(),
  name: z.string(),
  location: z.string(),
  state: z.enum(INSTRUMENT_STATES),
  reasons: z.array(z.enum(OUT_OF_SERVICE_REASONS)),
  usable: z.boolean(),
  statusLabel: z.string().describe('"in service", "out of service: qc_failed, defect", "commissioning", "retired"'),
  lastCalibration: z.string().nullable().describe('when the current certificate took effect'),
  nextCalibrationDue: z.string().nullable().describe("the current certificate's end"),
});
export const instrumentAnswer = instrumentRow.extend({
  workflowId: z.string(),
  manufacturer: z.string(),
  model: z.string(),
  serialNumber: z.string(),
  softwareVersion: z.string().nullable(),
  firmwareVersion: z.string().nullable(),
  calibrationReminders: z.array(z.string()),
  asOf: z.string().describe("PostgreSQL's clock when `usable` was judged"),
  calibrations: z.array(calibration).describe('newest first'),
  maintenancePlans: z.array(z.looseObject({ id: z.string(), description: z.string(), dueAt: z.string(), doneAt: z.string().nullable() })),
  events: z
    .array(z.looseObject({ kind: z.string(), passed: z.boolean().nullable(), by: z.string().nullable(), at: z.string(), details: z.looseObject({}) }))
    .describe('QC, defects (damage), maintenance and repair, verifications, retirement: newest first, the last 50'),
  lastFailure: z
    .looseObject({
      kind: z.enum(['qc', 'defect']),
      at: z.string(),
      impactedResults: z.array(z.string()).describe('analysis runs the instrument produced results for since its last passing QC'),
      capa: z.string().nullable().describe('the CAPA run opened or linked for it'),
    })
    .nullable(),
});
export const instrumentRegistered = z.looseObject({ code: z.string(), workflowId: z.string(), state: z.literal('commissioning'), location: z.string() });
export const instrumentPage = z.looseObject({ items: z.array(instrumentRow), nextCursor: z.string().nullable() });
