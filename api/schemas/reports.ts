import { z } from 'zod';
import { signatureBody, text } from './common';
import { accessionParams } from './sample-intake';

export const reportListParams = accessionParams;
export const reportParams = accessionParams.extend({
  version: z
    .string()
    .regex(/^v?[1-9]\d{0,5}$/, 'a report version such as v1')
    .transform((v) => Number(v.replace(/^v/, ''))),
});

export const releaseReportBody = z.strictObject({
  signature: signatureBody,
  /** The client's ID for this request: the same ID sent again is answered as the first, and applied once. */
  requestId: z
    .string()
    .regex(/^[A-Za-z0-9_-]{8,100}$/, '8 to 100 letters, digits, - or _')
    .optional(),
});
export const correctReportBody = z.strictObject({ reason: text(2000) });

const reportTest = z.looseObject({
  test: z.string(),
  name: z.string(),
  state: z.string(),
  result: z
    .looseObject({
      kind: z.string(),
      value: z.number().nullable(),
      unit: z.string().nullable(),
      code: z.string().nullable(),
      text: z.string().nullable(),
    })
    .nullable(),
  flag: z.string().nullable(),
  referenceRange: z.looseObject({ low: z.number().nullable(), high: z.number().nullable(), unit: z.string(), version: z.int() }).nullable(),
  reason: z.string().nullable(),
});

/** A report version as the API shows it: its content (PHI) only to those who may read the sample's reports. */
export const reportAnswer = z
  .looseObject({
    accession: z.string(),
    version: z.int(),
    workflowId: z.string(),
    state: z.enum(['awaiting_release', 'released']),
    corrected: z.boolean(),
    correction: z.looseObject({ version: z.int(), reason: z.string() }).nullable(),
    correctedBy: z.int().nullable().describe('the version that corrects this one, if any'),
    contentHash: z.string().describe('what the lab director signs to release it'),
    unverified: z.array(z.looseObject({ test: z.string(), state: z.string() })).describe('tests that block a release'),
    content: z.looseObject({
      patient: z.looseObject({}),
      sample: z.looseObject({
        orderingProvider: z
          .string()
          .nullable()
          .optional()
          .describe("the ordering provider the version is delivered to (printed name, null when none is named); absent from versions assembled before reports named them"),
      }),
      tests: z.array(reportTest),
      rejections: z.array(z.looseObject({})),
    }),
    pdfSha256: z.string().nullable(),
    pdf: z.string().nullable().describe('where the released PDF/A is read'),
    release: z.looseObject({ printedName: z.string(), username: z.string(), meaning: z.string(), signedAt: z.string() }).nullable(),
  })
  .describe('a report version');
export const reportListAnswer = z.looseObject({ items: z.array(reportAnswer) });
export const correctionStarted = z.looseObject({ workflowId: z.string(), version: z.int(), corrects: z.int(), location: z.string() });
export const reportPdf = { 'application/pdf': z.string().describe('PDF/A-2b, binary') };
