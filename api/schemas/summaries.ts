import { z } from 'zod';
import { boundedDuration, signatureBody, pageOffset } from './common';

export const SUMMARIZERS = ['anthropic', 'openai', 'ollama', 'extractive'] as const;

export const patientParams = z.object({ id: z.uuid('not a patient ID') });
export const jobParams = z.object({
  jobId: z.string().regex(/^soap-summary:[0-9a-f-]{36}:[0-9a-f]{32}$/, 'not a summary job ID (soap-summary:<patientId>:<notesHash>)'),
});

export const requestSummaryBody = z.strictObject({
  /** Summarizers to try, in order, within those configured; the extractive one is always the last resort. */
  providers: z
    .array(z.enum(SUMMARIZERS))
    .min(1)
    .max(4)
    .refine((list) => new Set(list).size === list.length, 'a summarizer may be named once')
    .optional(),
});
/** `wait=10s`: answer with the summary if it is ready within that time (at most the configured bound), else 202. */
export const requestSummaryQuery = z.strictObject({ wait: boundedDuration({ allowZero: true }).optional() });

export const listSummariesQuery = z.strictObject({
  limit: z.coerce.number().int().min(1).max(100).default(20),
  offset: pageOffset,
});

export const reviewBody = z.discriminatedUnion('decision', [
  z.strictObject({ decision: z.literal('approve'), signature: signatureBody, comment: z.string().trim().max(2000).optional() }),
  z.strictObject({
    decision: z.literal('edit'),
    /** The summary as the clinician corrected it; the signature's contentHash is the SHA-256 of exactly this text. */
    text: z.string().trim().min(1, 'must not be empty').max(20_000),
    signature: signatureBody,
    comment: z.string().trim().max(2000).optional(),
  }),
  z.strictObject({
    decision: z.literal('reject'),
    comment: z.string().trim().min(1, 'a rejection needs a comment').max(2000),
    /** Make a new summary (default), or end the job. */
    regenerate: z.boolean().default(true),
  }),
]);
export type ReviewBody = z.infer<typeof reviewBody>;
