import { z } from 'zod';
import { MAX_DURATION, MAX_DURATION_MS } from '../../common/durations';
import { OUT_OF_BOUNDS, isoDateTime, text, pageOffset } from './common';

export const scheduleParams = z.object({ scheduleId: z.string().min(1).max(200) });
export const overlapPolicy = z.enum(['skip', 'buffer_one', 'buffer_all', 'cancel_other', 'terminate_other', 'allow_all']);
export const reasonBody = z.strictObject({ reason: text(2000) });
export const triggerBody = z.strictObject({ reason: text(2000), overlap: overlapPolicy.optional() });
export const backfillBody = z
  .strictObject({ start: isoDateTime, end: isoDateTime, reason: text(2000), overlap: overlapPolicy.optional() })
  .refine((b) => Date.parse(b.start) < Date.parse(b.end), { message: 'start must be before end', path: ['end'] })
  .refine((b) => Date.parse(b.end) - Date.parse(b.start) <= MAX_DURATION_MS, {
    message: `a backfill spans at most ${MAX_DURATION} (10 years)`,
    path: ['end'],
    params: { kind: OUT_OF_BOUNDS },
  });
export const backupParams = z.object({ backupId: z.uuid() });
export const backupListQuery = z.object({
  state: z.enum(['running', 'verified', 'failed', 'expired']).optional(),
  limit: z.coerce.number().int().min(1).max(200).default(50),
  offset: pageOffset,
});
export const legalHoldBody = z.strictObject({ hold: z.boolean(), reason: text(2000) });
export const preferencesBody = z.strictObject({
  timeZone: z
    .string()
    .max(64)
    .refine((zone) => {
      try {
        new Intl.DateTimeFormat('en', { timeZone: zone });
        return true;
      } catch {
        return false;
      }
    }, 'not an IANA time zone')
    .nullable()
    .optional(),
  digest: z.boolean().optional(),
});
