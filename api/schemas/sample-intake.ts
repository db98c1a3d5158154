import { z } from 'zod';
import { DISPOSITIONS, PRIORITIES, REJECTION_CODES, SAMPLE_STATES } from '../../common/sample-intake';
import { durationString, flagParam, isoDate, isoDateTime, pagination, signatureBody, text, username } from './common';

export const accessionParams = z.object({ accession: z.string().regex(/^ACC-\d{8,}$/, 'an accession number such as ACC-26000001') });
const code = z.string().regex(/^[A-Z0-9_-]{1,32}$/, 'an upper-case code');
const label = z.string().trim().min(1).max(64);
const celsius = z.number().min(-200).max(100);

export const patientBody = z.strictObject({
  name: z.string().trim().min(1).max(200).optional(),
  dob: isoDate.refine((d) => Date.parse(`${d}T00:00:00Z`) <= Date.now() + 14 * 3600_000, 'must not be in the future').optional(),
  mrn: z.string().trim().min(1).max(64).optional(),
  /** For reference ranges by sex; a range for either sex applies when it is not given. */
  sex: z.enum(['female', 'male']).optional(),
});

export const timersBody = z
  .strictObject({
    inTransitDue: durationString,
    specimenHold: durationString,
    orderHold: durationString,
    statTurnaround: durationString,
    cancelRetention: durationString,
  })
  .partial();

/** A patient's (name, dob, mrn), or for a sample of received goods its material's (item code, lot, receipt). */
const identifiers = z
  .array(z.strictObject({ type: z.enum(['name', 'dob', 'mrn', 'item', 'lot', 'receipt']), value: z.string().max(200) }))
  .max(5);

export const inspectBody = z.strictObject({
  identifiers,
  container: label,
  preservative: label,
  volumeMl: z.number().min(0).max(1000),
  temperatureC: celsius,
  hemolyzed: z.boolean(),
  clotted: z.boolean(),
});

const sampleItem = z.strictObject({
  sampleType: code,
  priority: z.enum(PRIORITIES).default('routine'),
  /** Empty: a specimen without an order, held until one is attached. */
  tests: z.array(code).max(50).default([]),
  externalId: label.optional(),
  barcode: label.optional(),
  patient: patientBody,
  collectedAt: isoDateTime.optional(),
});

export const registerBody = sampleItem.extend({
  submitter: username.optional(),
  /** The requisition's ordering provider: a clinician's username; critical values are called to them. */
  orderingProvider: username.optional(),
  timers: timersBody.optional(),
});

/** The most samples one batch registers. */
export const MAX_BATCH_SAMPLES = 5000;
/**
 * The batch route's body limit: a realistic sample with its arrival is about 400 bytes of JSON, so a full batch is
 * about 2 MB; twice that leaves room for long labels while a body over it is refused before it is parsed.
 */
export const BATCH_BODY_LIMIT_BYTES = 4 * 1024 * 1024;

export const batchBody = z.strictObject({
  samples: z
    .array(
      sampleItem.extend({
        /** The requisition's ordering provider: a clinician's username; critical values are called to them. */
        orderingProvider: username.optional(),
        /** A specimen in hand: received and inspected as part of the batch. */
        arrival: z.strictObject({ location: label, temperatureC: celsius, findings: inspectBody.omit({ temperatureC: true }) }).optional(),
      }),
    )
    .min(1)
    .max(MAX_BATCH_SAMPLES),
  /** Accept without a person the specimens in hand that pass every criterion. */
  autoAccept: z.boolean().default(false),
  timers: timersBody.optional(),
});

export const receiveBody = z.strictObject({
  location: label,
  temperatureC: celsius.optional(),
  collectedAt: isoDateTime.optional(),
  condition: text(200).optional(),
});
export const deviationBody = z.strictObject({ comment: text(2000), signature: signatureBody });
export const rejectBody = z.strictObject({
  code: z.enum(Object.keys(REJECTION_CODES) as [keyof typeof REJECTION_CODES, ...(keyof typeof REJECTION_CODES)[]]),
  condition: text(500),
  disposition: z.enum(DISPOSITIONS),
  comment: text(2000).optional(),
  tests: z.array(code).min(1).max(50).optional(),
});
export const aliquotBody = z.strictObject({ volumesMl: z.array(z.number().positive().max(100)).min(1).max(24) });
export const storeBody = z.strictObject({ piece: z.string().max(40).optional(), freezer: label, rack: label, box: label, position: label });
export const routeBody = z.strictObject({
  tests: z
    .array(z.strictObject({ test: code, piece: z.string().max(40).optional() }))
    .min(1)
    .max(50)
    .optional(),
});
export const reasonBody = z.strictObject({ reason: text(1000) });
/** Sets or corrects a registered sample's ordering provider (a clinician's username), with the reason. */
export const orderingProviderBody = z.strictObject({ orderingProvider: username, reason: text(1000) });
export type OrderingProviderBody = z.infer<typeof orderingProviderBody>;
export const orderBody = z.strictObject({ tests: z.array(code).min(1).max(50) });
export const custodyBody = z.strictObject({
  piece: z.string().max(40).optional(),
  event: z.enum(['handoff', 'moved', 'retrieved', 'returned', 'shipped_out', 'disposed']),
  from: label,
  to: label,
  condition: text(200).optional(),
});

export const listQuery = pagination.extend({
  state: z.enum(SAMPLE_STATES).optional(),
  sampleType: code.optional(),
  overdue: flagParam.optional(),
  submitter: username.optional(),
});

export const sourceBody = z.strictObject({ name: z.string().regex(/^[a-z0-9_-]{2,40}$/), contact: username.optional() });

/** What an instrument, courier or external LIMS posts to /api/v1/webhooks/:source. */
export const webhookBody = z.object({
  eventId: z.string().min(1).max(200),
  type: z.enum(['order', 'sample.shipped', 'sample.received', 'result.ready']),
  occurredAt: isoDateTime.optional(),
  sample: z.object({
    externalId: label,
    barcode: label.optional(),
    sampleType: z.string().max(64).optional(),
    tests: z.array(z.string().max(64)).max(50).optional(),
    priority: z.enum(PRIORITIES).optional(),
    collectedAt: isoDateTime.optional(),
    patient: patientBody.optional(),
    /**
     * The order's ordering provider, by username. One who is not an active clinician of the lab does not hold the
     * order: the sample is registered without a provider and the lab gets a task to set one.
     */
    orderingProvider: z.string().max(64).optional(),
  }),
  location: label.optional(),
  temperatureC: celsius.optional(),
  tests: z.array(z.string().max(64)).max(50).optional(),
});
export type WebhookBody = z.infer<typeof webhookBody>;

export const heldOrderParams = z.object({ id: z.string().uuid('a held order ID') });
/** Resolve a held order: map its unknown codes to known ones and release it, or dismiss it with a reason. */
export const resolveHeldOrderBody = z.discriminatedUnion('action', [
  z.object({
    action: z.literal('release'),
    /** The known sample type to use instead of the order's (omit to keep it). */
    sampleType: z.string().min(1).max(64).optional(),
    /** Unknown test code → known test code; codes not named here are kept. */
    tests: z.record(z.string().min(1).max(64), z.string().min(1).max(64)).default({}),
    comment: z.string().max(2000).optional(),
    /** The ordering provider (a clinician's username) instead of the one the order names, if any. */
    orderingProvider: username.optional(),
  }),
  z.object({ action: z.literal('dismiss'), reason: z.string().trim().min(3).max(2000) }),
]);
export type ResolveHeldOrderBody = z.infer<typeof resolveHeldOrderBody>;
export type RegisterBody = z.infer<typeof registerBody>;
export type BatchBody = z.infer<typeof batchBody>;
export type InspectBody = z.infer<typeof inspectBody>;
