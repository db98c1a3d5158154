import { z } from 'zod';

const value = z.string().trim().min(1, 'must not be empty').max(500);

export const coaParams = z.object({ id: z.uuid('not an extraction ID') });

export const startCoaBody = z.strictObject({
  /** The certificate's text as the supplier sent it (no PHI: a supplier document). */
  text: z.string().trim().min(1, 'must not be empty').max(200_000),
  /** The incoming-inspection sample (type INCOMING) the certificate belongs to. */
  sampleId: z.uuid('not a sample ID').optional(),
});

export const coaFieldsBody = z.strictObject({
  supplier: value,
  product: value,
  lotNumber: value,
  expiryDate: value,
  parameters: z
    .array(z.strictObject({ name: value, result: value, specification: value }))
    .min(1, 'at least one tested parameter')
    .max(200),
});

export const confirmCoaBody = z.strictObject({ fields: coaFieldsBody });
export type ConfirmCoaBody = z.infer<typeof confirmCoaBody>;

export const rejectCoaBody = z.strictObject({ reason: z.string().trim().min(1, 'a reason is required').max(2000) });

export const inspectionParams = z.object({ sampleId: z.uuid('not a sample ID') });
