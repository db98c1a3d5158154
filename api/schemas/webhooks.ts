import { z } from 'zod';
import { domainEventType } from '../../common/domain-events';

const url = z.string().max(2000).url('expected an absolute http(s) URL');
const eventTypes = z.array(domainEventType).min(1).max(50);

export const subscriptionIdParams = z.strictObject({ id: z.uuid('expected a subscription ID (UUID)') });

export const createSubscriptionBody = z.strictObject({
  url,
  eventTypes,
  description: z.string().max(500).nullable().optional(),
});

export const updateSubscriptionBody = z
  .strictObject({
    url: url.optional(),
    eventTypes: eventTypes.optional(),
    description: z.string().max(500).nullable().optional(),
    enabled: z.boolean().optional(),
  })
  .refine((b) => Object.keys(b).length > 0, 'name at least one field to change');

export const redeliverBody = z.strictObject({
  /** The dead letters to send again; all of the subscription's when absent. */
  eventIds: z.array(z.uuid()).min(1).max(1000).optional(),
});

const typeList = z
  .string()
  .max(1000)
  .transform((v) => v.split(',').map((t) => t.trim()))
  .pipe(z.array(domainEventType));
/** An event's `seq`, as `after` and as the Last-Event-ID an event stream sends back. */
export const eventSeq = z.coerce.number().int().min(0).max(Number.MAX_SAFE_INTEGER);

export const eventsQuery = z.strictObject({
  type: typeList.optional(),
  after: eventSeq.optional(),
  limit: z.coerce.number().int().min(1).max(500).default(100),
});

export const streamQuery = z.strictObject({
  type: typeList.optional(),
  /** For a first connection (a browser's EventSource cannot send Last-Event-ID then); Last-Event-ID wins. */
  after: eventSeq.optional(),
});

/** The Last-Event-ID request header: digits only (labflow's event IDs are seqs). */
export const lastEventId = z.string().regex(/^\d{1,15}$/, 'expected the id of an event this stream sent (digits)').transform(Number);

// What the routes answer (api/route.ts `response`).
const record = z.looseObject;
const timestamp = z.string().describe('ISO 8601 instant');

export const domainEventAnswer = record({
  seq: z.int().describe('commit order; the `after` of the next page'),
  id: z.string().describe('the webhook-id of its deliveries'),
  type: z.string(),
  version: z.int(),
  entityType: z.string(),
  entityId: z.string(),
  data: record({}).describe("the type's schema: identifiers and states only"),
  occurredAt: timestamp,
});
export const eventPage = z.object({ items: z.array(domainEventAnswer), next: z.int().nullable() });
export const eventSchemas = z.record(z.string(), record({ version: z.int(), schema: z.unknown() }));

export const subscriptionAnswer = record({
  id: z.string(),
  url: z.string(),
  eventTypes: z.array(z.string()),
  description: z.string().nullable(),
  state: z.enum(['enabled', 'disabled']),
  disabledReason: z.string().nullable(),
  failingSince: timestamp.nullable(),
  deliveredThrough: z.int(),
  previousSecretExpiresAt: timestamp.nullable(),
  createdBy: z.string(),
  createdAt: timestamp,
  updatedAt: timestamp,
});
export const createdSubscription = subscriptionAnswer.extend({ secret: z.string().describe('whsec_…: shown this once') });
export const subscriptionList = z.object({ items: z.array(subscriptionAnswer) });
export const rotatedSecret = z.object({ secret: z.string().describe('whsec_…: shown this once'), previousSecretExpiresAt: timestamp });
export const deadLetterList = z.object({
  items: z.array(
    record({
      eventId: z.string(),
      seq: z.int(),
      type: z.string(),
      attempts: z.int(),
      lastStatus: z.int().nullable(),
      lastError: z.string().nullable(),
      deadSince: timestamp,
    }),
  ),
});
export const redeliveryAnswer = z.object({ requested: z.int() });
