import { z } from 'zod';
import { EXPORT_FORMATS } from '../exports/exported-record';
import { queryInt } from './common';

export const exportQuery = z.strictObject({ format: z.enum(EXPORT_FORMATS).default('json') });

/** A keyset page of a trail: the events after sequence number `after`, oldest first. */
export const auditTrailQuery = z.strictObject({
  after: queryInt(0).optional(),
  limit: queryInt(1, 1000).default(100),
});
