import { z } from 'zod';
import { BULK_EXPORT_FORMATS } from '../../common/bulk-export';
import { EXPORT_FORMATS } from '../exports/exported-record';
import { queryInt } from './common';

export const exportQuery = z.strictObject({ format: z.enum(EXPORT_FORMATS).default('json') });

/** A keyset page of a trail: the events after sequence number `after`, oldest first. */
export const auditTrailQuery = z.strictObject({
  after: queryInt(0).optional(),
  limit: queryInt(1, 1000).default(100),
});

const bulkFormat = z.enum(BULK_EXPORT_FORMATS).default('json').describe('pdf (one PDF/A-2b file), csv (one table) or json (one object)');

/** A bulk export: every CAPA initiated in a year, or every sample registered in a month (UTC). */
export const bulkExportBody = z.discriminatedUnion('kind', [
  z.strictObject({ kind: z.literal('capas'), year: z.int().min(2000).max(2999), format: bulkFormat }),
  z.strictObject({
    kind: z.literal('samples'),
    month: z.string().regex(/^[0-9]{4}-(0[1-9]|1[0-2])$/, 'a month as YYYY-MM'),
    format: bulkFormat,
  }),
]);

export const bulkExportParams = z.strictObject({ id: z.uuid() });
