import { z } from 'zod';
import { ANALYSIS_STATES, FLAGS } from '../../common/results';
import { accessionParams } from './sample-intake';
import { signatureBody, text } from './common';

export const analysisListParams = accessionParams;
export const analysisParams = accessionParams.extend({
  test: z.string().regex(/^[A-Z0-9_-]{1,32}$/, 'a test code such as TSH'),
});

const entered = {
  /** Who performed the measurement (a person or an instrument operator ID); not necessarily who types it in. */
  performedBy: text(100),
  /**
   * The instrument's identifier. One in the equipment register must be usable now (in service, no reason to be out
   * of it, a calibration valid at this instant), unless this is a QC run; one not in the register is recorded as given.
   */
  instrument: text(64).optional(),
  /** A QC run: may be performed on an instrument that is not usable (to bring it back), and never counts as a result put in doubt. */
  qcRun: z.boolean().optional(),
  /** The instrument's own flags on this result (e.g. `H`, `HEM`, `E07`); an autoverification rule set may refuse them. */
  instrumentFlags: z.array(z.string().regex(/^[A-Za-z0-9_.*+-]{1,16}$/, 'an instrument flag such as H or E07')).max(20).optional(),
};
export const resultBody = z.discriminatedUnion('kind', [
  z.strictObject({ kind: z.literal('numeric'), value: z.number().finite().min(-1e12).max(1e12), unit: text(32), ...entered }),
  z.strictObject({ kind: z.literal('coded'), code: text(64), ...entered }),
  z.strictObject({ kind: z.literal('text'), text: text(4000), ...entered }),
]);
export type ResultBody = z.infer<typeof resultBody>;

export const analysisReasonBody = z.strictObject({ reason: text(1000) });
export const signedBody = z.strictObject({ signature: signatureBody });
export const emptyBody = z.strictObject({});

/** What the results routes answer (route specs' `response` and the OpenAPI document). */
const referenceRange = z.looseObject({
  version: z.int(),
  sex: z.enum(['any', 'female', 'male']),
  ageMinDays: z.int(),
  ageMaxDays: z.int().nullable(),
  unit: z.string(),
  low: z.number().nullable(),
  high: z.number().nullable(),
  criticalLow: z.number().nullable(),
  criticalHigh: z.number().nullable(),
  warningLow: z.number().nullable().optional(),
  warningHigh: z.number().nullable().optional(),
});
export const analysisAnswer = z.looseObject({
  accession: z.string(),
  test: z.string(),
  workflowId: z.string(),
  retestNumber: z.int(),
  state: z.enum(ANALYSIS_STATES),
  frozen: z.boolean(),
  reason: z.string().nullable(),
  retestOf: z.string().nullable().describe('the run this one repeats'),
  retestedBy: z.string().nullable().describe('the retest that froze this one'),
  result: z
    .looseObject({
      kind: z.enum(['numeric', 'coded', 'text']),
      value: z.number().nullable(),
      unit: z.string().nullable(),
      code: z.string().nullable(),
      text: z.string().nullable(),
      performedBy: z.string(),
      instrument: z.string().nullable(),
      qcRun: z.literal(true).optional().describe('present on a QC run only'),
      instrumentFlags: z.array(z.string()).optional().describe("the instrument's flags, present when it sent any"),
      enteredAt: z.string(),
      flag: z.enum(FLAGS).nullable().describe('null when no reference range matched: never a false "normal"'),
      referenceRange: referenceRange.nullable().describe('the range the result was judged against, as it was then'),
      measuringRange: z
        .looseObject({ low: z.number().nullable(), high: z.number().nullable() })
        .optional()
        .describe("the test's measuring range the value was judged against (outside it: flag invalid); present when the test sets one"),
      deltaCheck: z
        .looseObject({
          limit: z.number(),
          kind: z.enum(['absolute', 'percent']),
          windowHours: z.int().nullable(),
          previous: z
            .looseObject({ workflowId: z.string(), value: z.number(), collectedAt: z.string() })
            .nullable()
            .describe('null when there is none, and for a reader outside the lab (with difference and percentChange)'),
          difference: z.number().nullable(),
          percentChange: z.number().nullable(),
          exceeded: z.boolean().nullable().describe('null: no previous result to compare with'),
        })
        .optional()
        .describe("the delta check against the patient's previous verified result; present when the test's policy sets a delta limit"),
    })
    .nullable(),
  autoverification: z
    .looseObject({
      ruleSetId: z.string(),
      version: z.int(),
      passed: z.boolean(),
      reasons: z.array(z.looseObject({ rule: z.string(), detail: z.string() })),
      judgedAt: z.string(),
    })
    .nullable()
    .optional()
    .describe("the verdict of the test's autoverification rule set on the submitted result: passed, or the reasons it went to a person"),
  submittedBy: z
    .looseObject({
      by: z.literal('instrument'),
      instrument: z.string().nullable(),
      performedBy: z.string(),
      source: z.string(),
      messageId: z.string().nullable(),
      entryId: z.string(),
    })
    .optional()
    .describe('present when the instrument path submitted the result: the instrument and its performer, through the signed source'),
  contentHash: z.string().describe('what a verification or release signs'),
  verifications: z.array(
    z.looseObject({ seq: z.int(), username: z.string(), printedName: z.string().nullable(), meaning: z.string().nullable(), signedAt: z.string().nullable() }),
  ),
});
export const analysisListAnswer = z.looseObject({ items: z.array(analysisAnswer) });
