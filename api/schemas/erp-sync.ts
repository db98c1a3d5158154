import { z } from 'zod';
import { ERP_ENTITIES } from '../../common/erp-sync';
import { OUT_OF_BOUNDS, boundedValues, pagination, text } from './common';

export const erpEntity = z.enum(ERP_ENTITIES);
export const triggerSyncBody = z.strictObject({
  entity: erpEntity.optional(),
  mode: z.enum(['incremental', 'reconcile']).default('incremental'),
});
export const runsQuery = pagination.extend({
  scope: z.enum(['all', ...ERP_ENTITIES]).optional(),
  state: z.enum(['running', 'completed', 'failed']).optional(),
});
export const runParams = z.object({ id: z.string().min(1).max(100) });
export const entityParams = z.object({ entity: erpEntity });
export const resetCursorBody = z.strictObject({
  reason: text(2000),
  /** Where the next sync starts; absent: from the beginning (a full re-sync). */
  to: z
    .strictObject({
      modified: z
        .string()
        .regex(/^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}(\.\d{1,6})?$/, 'ERP time, YYYY-MM-DD HH:MM:SS.ffffff')
        .refine((t) => Number(t.slice(0, 4)) >= 1900 && Number(t.slice(0, 4)) <= new Date().getUTCFullYear() + 1, {
          message: 'must lie between 1900 and next year',
          params: { kind: OUT_OF_BOUNDS },
        })
        .register(boundedValues),
      name: z.string().min(1).max(200),
    })
    .optional(),
});
export const deadLettersQuery = pagination.extend({
  state: z.enum(['open', 'retry_requested', 'resolved', 'discarded']).optional(),
  entity: z.string().max(40).optional(),
});
export const deadLetterParams = z.object({ id: z.uuid() });
export const discardBody = z.strictObject({ reason: text(2000) });
export const supplierParams = z.object({ supplier: z.string().min(1).max(140) });
export const decisionParams = supplierParams.extend({ decision: z.enum(['approve', 'suspend', 'disqualify']) });
export const decisionBody = z.strictObject({ reason: text(2000) });
