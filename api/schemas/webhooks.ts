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

export const eventsQuery = z.strictObject({
  type: z
    .string()
    .max(1000)
    .transform((v) => v.split(',').map((t) => t.trim()))
    .pipe(z.array(domainEventType))
    .optional(),
  after: z.coerce.number().int().min(0).max(Number.MAX_SAFE_INTEGER).optional(),
  limit: z.coerce.number().int().min(1).max(500).default(100),
});
