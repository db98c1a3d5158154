import type { SearchAttributePair } from '@temporalio/common';
import { defineQuery, defineSignal, defineUpdate } from '@temporalio/workflow';
import type { AssigneeRef } from './assignees';
import { sha256HexOf } from './capa-hash';
import { durationMs } from './durations';
import { workflowIds } from './ids';
import type { Actor } from './roles';
import { EntityId, EntityType, Stage } from './search-attributes';
import type { SignatureInput } from './signatures';

/** Sample intake: accessioning, inspection, acceptance, aliquots, storage, routing and chain of custody. */

export const SAMPLE_STATES = [
  'expected',
  'in_transit',
  'received',
  'inspected',
  'accepted',
  'accepted_with_deviation',
  'rejected',
  'aliquoted',
  'stored',
  'routed',
  'cancelled',
  'completed',
] as const;
export type SampleState = (typeof SAMPLE_STATES)[number];
/** States in which the run is over; a cancelled sample can still be reinstated. */
export const FINAL_SAMPLE_STATES: SampleState[] = ['rejected', 'completed'];
export const ACCEPTED_STATES: SampleState[] = ['accepted', 'accepted_with_deviation', 'aliquoted', 'stored', 'routed'];

export const PRIORITIES = ['routine', 'stat'] as const;
export type Priority = (typeof PRIORITIES)[number];

/** HL7 v2 table 0490, Specimen Reject Reason. */
export const REJECTION_CODES = {
  EX: 'Expired',
  QS: 'Quantity not sufficient',
  RB: 'Broken container',
  RC: 'Clotting',
  RD: 'Missing collection date',
  RE: 'Missing patient ID number',
  RH: 'Hemolysis',
  RI: 'Identification problem',
  RM: 'Labeling',
  RN: 'Contamination',
  RP: 'Missing phlebotomist ID',
  RR: 'Improper storage',
  RS: 'Name misspelling',
} as const;
export type RejectionCode = keyof typeof REJECTION_CODES;
/** What happens to a rejected specimen (CLIA 493.1283): recorded with the rejection. */
export const DISPOSITIONS = ['discarded', 'returned_to_submitter', 'retained', 'tested_with_disclaimer'] as const;
export type Disposition = (typeof DISPOSITIONS)[number];

export const TEMPERATURE_CLASSES = ['room', 'refrigerated', 'frozen'] as const;
export type TemperatureClass = (typeof TEMPERATURE_CLASSES)[number];

/** The written acceptance criteria of a sample type (sample_types row), handed to each run at its start. */
export interface AcceptanceCriteria {
  containers: string[];
  preservatives: string[];
  minVolumeMl: number;
  /** Arrival temperatures accepted for this type. */
  temperatureClasses: TemperatureClass[];
  rejectHemolyzed: boolean;
  rejectClotted: boolean;
  /** Stability since collection by storage temperature, e.g. { room: '8h', refrigerated: '7d' }; absent = not stable. */
  stability: Partial<Record<TemperatureClass, string>>;
}

/** Waiting periods of a run; realistic defaults below, tests pass seconds. */
export interface IntakeTimers {
  /** A shipped specimen should arrive within this. */
  inTransitDue: string;
  /** An order whose specimen never arrives is escalated after this. */
  specimenHold: string;
  /** A specimen received without an order is held this long for one. */
  orderHold: string;
  /** STAT samples: receipt to result. */
  statTurnaround: string;
  /** How long a cancelled sample may still be reinstated before its run ends. */
  cancelRetention: string;
}
export const DEFAULT_INTAKE_TIMERS: IntakeTimers = {
  inTransitDue: '24h',
  specimenHold: '7d',
  orderHold: '72h',
  statTurnaround: '1h',
  cancelRetention: '30d',
};

/** What the person inspecting the specimen saw. Identifiers arrive already compared by the API (no PHI here). */
export interface InspectionFindings {
  identifiers: { count: number; matchRequisition: boolean };
  container: string;
  preservative: string;
  volumeMl: number;
  temperatureC: number;
  hemolyzed: boolean;
  clotted: boolean;
}
export interface CriterionCheck {
  criterion: string;
  ok: boolean;
  detail: string;
  /** HL7 0490 code suggested when the criterion fails. */
  code?: RejectionCode;
}

export function temperatureClass(celsius: number): TemperatureClass | null {
  if (celsius <= -15) return 'frozen';
  if (celsius >= 2 && celsius <= 8) return 'refrigerated';
  if (celsius >= 15 && celsius <= 25) return 'room';
  return null;
}

/** The stability deadline of a specimen collected at collectedAt and kept at the given temperature. */
export function stabilityDeadline(criteria: AcceptanceCriteria, collectedAt: string, cls: TemperatureClass): number | null {
  const window = criteria.stability[cls];
  return window ? Date.parse(collectedAt) + durationMs(window) : null;
}

/** Checks a specimen against its sample type's written criteria; pure, so the run can do it deterministically. */
export function evaluateInspection(
  criteria: AcceptanceCriteria,
  f: InspectionFindings,
  collectedAt: string | null,
  receivedAt: string,
): { checks: CriterionCheck[]; passed: boolean } {
  const cls = temperatureClass(f.temperatureC);
  const checks: CriterionCheck[] = [
    {
      criterion: 'identifiers',
      ok: f.identifiers.count >= 2 && f.identifiers.matchRequisition,
      detail:
        f.identifiers.count < 2
          ? `${f.identifiers.count} patient identifier(s) on the specimen; two are required`
          : f.identifiers.matchRequisition
            ? 'two identifiers match the requisition'
            : 'the identifiers do not match the requisition',
      code: f.identifiers.count < 2 ? 'RE' : 'RI',
    },
    {
      criterion: 'container',
      ok: criteria.containers.includes(f.container),
      detail: `${f.container} (accepted: ${criteria.containers.join(', ')})`,
      code: 'RM',
    },
    {
      criterion: 'preservative',
      ok: criteria.preservatives.includes(f.preservative),
      detail: `${f.preservative} (accepted: ${criteria.preservatives.join(', ')})`,
      code: 'RR',
    },
    {
      criterion: 'volume',
      ok: f.volumeMl >= criteria.minVolumeMl,
      detail: `${f.volumeMl} mL (minimum ${criteria.minVolumeMl} mL)`,
      code: 'QS',
    },
    {
      criterion: 'temperature',
      ok: cls !== null && criteria.temperatureClasses.includes(cls),
      detail: `${f.temperatureC} °C on arrival (${cls ?? 'out of every range'}; accepted: ${criteria.temperatureClasses.join(', ')})`,
      code: 'RR',
    },
    {
      criterion: 'hemolysis',
      ok: !(criteria.rejectHemolyzed && f.hemolyzed),
      detail: f.hemolyzed ? 'hemolyzed' : 'not hemolyzed',
      code: 'RH',
    },
    { criterion: 'clotting', ok: !(criteria.rejectClotted && f.clotted), detail: f.clotted ? 'clotted' : 'not clotted', code: 'RC' },
  ];
  if (!collectedAt) {
    checks.push({ criterion: 'stability', ok: false, detail: 'the collection time is unknown', code: 'RD' });
  } else {
    const deadline = cls ? stabilityDeadline(criteria, collectedAt, cls) : null;
    const elapsedH = Math.round(((Date.parse(receivedAt) - Date.parse(collectedAt)) / 3_600_000) * 10) / 10;
    checks.push({
      criterion: 'stability',
      ok: deadline !== null && Date.parse(receivedAt) <= deadline,
      detail:
        deadline === null
          ? `not stable at ${cls ?? f.temperatureC + ' °C'}`
          : `${elapsedH} h since collection (stable ${criteria.stability[cls!]} ${cls})`,
      code: 'EX',
    });
  }
  return { checks, passed: checks.every((c) => c.ok) };
}

export interface SampleIntakeInput {
  sampleId: string;
  accession: string;
  sampleType: string;
  priority: Priority;
  requestedTests: string[];
  /** False for a specimen that arrived without an order (held until one is attached). */
  hasOrder: boolean;
  collectedAt: string | null;
  registeredAt: string;
  criteria: AcceptanceCriteria;
  timers: IntakeTimers;
  /** Who is told about rejections and recollections. */
  submitter: AssigneeRef | null;
  /** Batch intake: a specimen in hand, received and inspected at once; accepted without a person when it passes. */
  arrival?: { receipt: ReceiptArgs; inspection: InspectArgs; autoAccept: boolean };
  resume?: SampleIntakeState;
  /** A run continued as new while a change of its tests was still to be looked at: the new run looks first. */
  recheckTests?: boolean;
}

export interface Piece {
  accession: string;
  parent: string | null;
  volumeMl: number | null;
  state: 'active' | 'rejected';
}
export interface StoragePlace {
  piece: string;
  freezer: string;
  rack: string;
  box: string;
  position: string;
}
export interface RoutedTest {
  test: string;
  workQueue: string;
  piece: string;
  at: string;
}
export interface SampleDecision {
  kind: 'accepted' | 'accepted_with_deviation' | 'rejected';
  by: string;
  at: string;
  comment?: string;
  code?: RejectionCode;
  condition?: string;
  disposition?: Disposition;
  tests?: string[];
  signedBy?: string;
}
export type TimerKind = 'in_transit_overdue' | 'specimen_hold' | 'order_hold' | 'stability_expired' | 'stat_overdue';

/** What the inspection found, as the run keeps it and the record shows it. */
export interface InspectionRecord {
  by: string;
  at: string;
  /** SHA-256 of the inspection record as shown to people; a deviation signature is over this. */
  contentHash: string;
  checks: CriterionCheck[];
  passed: boolean;
}

/**
 * The facts of one step that change the sample's own record (each optional: a step states only what it changed).
 * The run states them; db/sample-intake.ts decides the columns.
 */
export interface SampleRecordFacts {
  receipt?: { receivedAt: string; by: string; location: string; collectedAt: string | null };
  /** The collection time as the run knows it now (a courier's shipment may carry it). */
  collectedAt?: string | null;
  inspection?: { record: InspectionRecord; volumeMl: number };
  order?: { tests: string[] };
  deviation?: { comment: string };
  /** A reason when cancelled, null when reinstated. */
  cancelReason?: string | null;
}

export interface SampleIntakeState {
  workflowId: string;
  accession: string;
  sampleType: string;
  priority: Priority;
  state: SampleState;
  cancelledFrom: SampleState | null;
  cancelReason: string | null;
  cancelledAt: string | null;
  hasOrder: boolean;
  requestedTests: string[];
  rejectedTests: string[];
  collectedAt: string | null;
  registeredAt: string;
  shippedAt: string | null;
  receivedAt: string | null;
  receivedBy: string | null;
  receivedLocation: string | null;
  temperatureClass: TemperatureClass | null;
  inspection: InspectionRecord | null;
  decision: SampleDecision | null;
  partialRejections: SampleDecision[];
  pieces: Piece[];
  storage: StoragePlace[];
  routes: RoutedTest[];
  results: string[];
  timersFired: TimerKind[];
  dueAt: string | null;
  stage: string;
  appliedEvents: string[];
}

/**
 * A person's action carries the actor the API authenticated and the ID of the grant it wrote for the action
 * (common/sample-intake-grants.ts); the recording activity consumes the grant. A receipt or inspection without a
 * grant comes only from the run itself (a machine event or a batch's arrival), with proof of its own.
 */
export interface ReceiptArgs {
  actor: Actor | null;
  grant?: string;
  /** 'system:<source>' for an instrument or external LIMS. */
  by: string;
  receivedAt: string;
  location: string;
  temperatureC?: number;
  collectedAt?: string;
  condition?: string;
}
export interface InspectArgs {
  actor: Actor | null;
  grant?: string;
  findings: InspectionFindings;
}
export interface AcceptArgs {
  actor: Actor;
  grant: string;
}
export interface DeviationArgs {
  actor: Actor;
  grant: string;
  comment: string;
  signature: SignatureInput;
}
export interface RejectArgs {
  actor: Actor;
  grant: string;
  code: RejectionCode;
  condition: string;
  disposition: Disposition;
  comment?: string;
  /** Only these requested tests are rejected; all of them when absent. */
  tests?: string[];
}
export interface AliquotArgs {
  actor: Actor;
  grant: string;
  volumesMl: number[];
}
export interface StoreArgs {
  actor: Actor;
  grant: string;
  piece: string;
  freezer: string;
  rack: string;
  box: string;
  position: string;
}
export interface RouteArgs {
  actor: Actor;
  grant: string;
  /** Test code → piece it runs on; every accepted test not yet routed when absent (on the primary sample). */
  tests?: { test: string; piece: string }[];
}
export interface CancelArgs {
  actor: Actor;
  grant: string;
  reason: string;
}
export interface AttachOrderArgs {
  actor: Actor;
  grant: string;
  tests: string[];
}
/** Machine events from couriers, instruments and external systems; eventId makes a replayed event apply once. */
export interface SampleEvent {
  eventId: string;
  source: string;
  type: 'order' | 'shipped' | 'received' | 'result_ready';
  at: string;
  location?: string;
  temperatureC?: number;
  collectedAt?: string;
  tests?: string[];
  /**
   * The webhook delivery the API recorded and signalled this event for (sample_webhook_events): the recording
   * activity believes the event only when that row names this event and this run.
   */
  delivery?: { source: string; eventId: string };
}

export const sampleStateQuery = defineQuery<SampleIntakeState>('sampleState');
export const receiveUpdate = defineUpdate<SampleIntakeState, [ReceiptArgs]>('receive');
export const inspectUpdate = defineUpdate<SampleIntakeState, [InspectArgs]>('inspect');
export const acceptUpdate = defineUpdate<SampleIntakeState, [AcceptArgs]>('accept');
export const acceptWithDeviationUpdate = defineUpdate<SampleIntakeState, [DeviationArgs]>('acceptWithDeviation');
export const rejectUpdate = defineUpdate<SampleIntakeState, [RejectArgs]>('reject');
export const aliquotUpdate = defineUpdate<SampleIntakeState, [AliquotArgs]>('aliquot');
export const storeUpdate = defineUpdate<SampleIntakeState, [StoreArgs]>('store');
export const routeUpdate = defineUpdate<SampleIntakeState, [RouteArgs]>('route');
export const cancelUpdate = defineUpdate<SampleIntakeState, [CancelArgs]>('cancel');
export const reinstateUpdate = defineUpdate<SampleIntakeState, [CancelArgs]>('reinstate');
export const attachOrderUpdate = defineUpdate<SampleIntakeState, [AttachOrderArgs]>('attachOrder');
export const sampleEventSignal = defineSignal<[SampleEvent]>('sampleEvent');

export interface SampleBatchInput {
  batchId: string;
  /** Runs started at once; the rest wait for a slot. */
  concurrency: number;
  /** Samples per page read from Postgres. */
  pageSize: number;
  timers: IntakeTimers;
  resume?: { after: string | null; started: number };
}
export interface SampleBatchProgress {
  batchId: string;
  started: number;
  done: boolean;
}
export const batchProgressQuery = defineQuery<SampleBatchProgress>('batchProgress');

/**
 * How every sample-intake run is started, whoever starts it (the API, a batch run, an ERP sync): one run per
 * accession, never a second one under the same ID, findable in the Web UI from its first moment.
 */
export function sampleIntakeStartOptions(accession: string): {
  workflowId: string;
  workflowIdReusePolicy: 'REJECT_DUPLICATE';
  typedSearchAttributes: SearchAttributePair[];
} {
  return {
    workflowId: workflowIds.sampleIntake(accession),
    workflowIdReusePolicy: 'REJECT_DUPLICATE',
    typedSearchAttributes: [
      { key: EntityType, value: 'sample' },
      { key: EntityId, value: accession },
      { key: Stage, value: 'expected' },
    ],
  };
}

/**
 * The hash a lab director signs when accepting with a deviation: SHA-256 of the inspection record as the API shows
 * it. Plain TypeScript, so the run computes it from what it holds and the API can show the same value.
 */
export function inspectionHash(accession: string, findings: InspectionFindings, receivedAt: string | null): string {
  const canonical = JSON.stringify({
    accession,
    receivedAt,
    findings: Object.fromEntries(Object.entries(findings).sort(([a], [b]) => a.localeCompare(b))),
  });
  return sha256HexOf(canonical);
}

export const sampleBatchWorkflowId = (batchId: string) => `sample-batch:${batchId}`;
export const aliquotAccession = (accession: string, n: number) => `${accession}-A${n}`;
