import { ACCEPTED_STATES, FINAL_SAMPLE_STATES, type SampleIntakeInput, type SampleIntakeState } from '../../common/sample-intake';

/** Machine events remembered for de-duplication; older ones have long been applied. */
export const MAX_EVENT_IDS = 200;

/** A registered sample before anything has happened to it. */
export function initialState(input: SampleIntakeInput, workflowId: string): SampleIntakeState {
  return {
    workflowId,
    accession: input.accession,
    sampleType: input.sampleType,
    priority: input.priority,
    state: 'expected',
    cancelledFrom: null,
    cancelReason: null,
    cancelledAt: null,
    hasOrder: input.hasOrder,
    requestedTests: input.requestedTests,
    rejectedTests: [],
    collectedAt: input.collectedAt,
    registeredAt: input.registeredAt,
    shippedAt: null,
    receivedAt: null,
    receivedBy: null,
    receivedLocation: null,
    temperatureClass: null,
    inspection: null,
    decision: null,
    partialRejections: [],
    pieces: [{ accession: input.accession, parent: null, volumeMl: null, state: 'active' }],
    storage: [],
    routes: [],
    results: [],
    timersFired: [],
    dueAt: null,
    stage: 'expected',
    appliedEvents: [],
  };
}

export const isFinal = (sample: SampleIntakeState): boolean => FINAL_SAMPLE_STATES.includes(sample.state);
export const isAccepted = (sample: SampleIntakeState): boolean => ACCEPTED_STATES.includes(sample.state);

/** The requested tests not rejected. */
export const acceptedTests = (sample: SampleIntakeState): string[] =>
  sample.requestedTests.filter((test) => !sample.rejectedTests.includes(test));

/** Accepted tests not yet routed to a work queue. */
export const unroutedTests = (sample: SampleIntakeState): string[] =>
  acceptedTests(sample).filter((test) => !sample.routes.some((r) => r.test === test));

/** Every accepted test has its result: the sample's work is done. */
export const allResulted = (sample: SampleIntakeState): boolean => acceptedTests(sample).every((test) => sample.results.includes(test));

/** The criteria the inspection found failed. */
export const failedCriteria = (sample: SampleIntakeState): string[] =>
  (sample.inspection?.checks ?? []).filter((check) => !check.ok).map((check) => check.criterion);
