import { z } from 'zod';
import { FLAGS } from '../../common/results';
import { signatureBody } from './common';

/** Test policies, versioned reference ranges and autoverification rule sets: what their routes take and answer. */
export const testParams = z.strictObject({ test: z.string().regex(/^[A-Z0-9_-]{1,32}$/, 'a test code such as TSH') });
export const ruleSetParams = testParams.extend({ version: z.coerce.number().int().min(1).max(1_000_000) });

const limit = z.number().finite().min(-1e12).max(1e12);
const ordered = (v: { low: number | null; high: number | null } | null) => !v || v.low === null || v.high === null || v.low < v.high;

export const autoverificationRules = z.strictObject({
  allowedFlags: z.array(z.enum(FLAGS).nullable()).max(FLAGS.length + 1),
  limits: z
    .strictObject({ low: limit.nullable(), high: limit.nullable() })
    .nullable()
    .refine(ordered, 'low must be below high'),
  delta: z.enum(['ignore', 'must-pass', 'must-pass-with-previous']),
  blockedInstrumentFlags: z.array(z.string().regex(/^[A-Za-z0-9_.*+-]{1,16}$/)).max(50),
  requireAcceptableSpecimen: z.boolean(),
  requireInstrument: z.boolean(),
});

export const ruleSetBody = z.strictObject({
  /** The version this one replaces (null for a test's first): another director's newer version is a 409. */
  basedOnVersion: z.int().min(1).nullable(),
  rules: autoverificationRules,
  /** Meaning `approval`; contentHash: SHA-256 of the canonical JSON of {test, version, rules} (version = basedOnVersion + 1). */
  signature: signatureBody,
});

export const ruleSetAnswer = z.looseObject({
  test: z.string(),
  version: z.int(),
  rules: autoverificationRules,
  contentHash: z.string(),
  createdBy: z.string(),
  signature: z.looseObject({ printedName: z.string(), meaning: z.string(), signedAt: z.string() }),
  createdAt: z.string(),
});
export const ruleSetListAnswer = z.looseObject({ items: z.array(ruleSetAnswer) });

const delta = z.strictObject({
  limit: z.number().positive().max(1e12),
  kind: z.enum(['absolute', 'percent']),
  windowHours: z.int().min(1).max(24 * 3650).nullable(),
});
export const policyBody = z
  .strictObject({
    selfVerification: z.boolean(),
    verificationsRequired: z.int().min(1).max(5),
    multiVerification: z.enum(['distinct', 'not_consecutive']),
    measuringRange: z.strictObject({ low: limit.nullable(), high: limit.nullable() }).nullable().refine(ordered, 'low must be below high'),
    delta: delta.nullable(),
  })
  .partial();
export const policyAnswer = z.looseObject({
  test: z.string(),
  resultKind: z.enum(['numeric', 'coded', 'text']),
  unit: z.string().nullable(),
  codes: z.array(z.string()).nullable(),
  selfVerification: z.boolean(),
  verificationsRequired: z.int(),
  multiVerification: z.enum(['distinct', 'not_consecutive']),
  measuringRange: z.looseObject({ low: z.number().nullable(), high: z.number().nullable() }).nullable(),
  delta: delta.nullable(),
});

const rangeRow = z
  .strictObject({
    sex: z.enum(['any', 'female', 'male']).default('any'),
    ageMinDays: z.int().min(0).max(60_000).default(0),
    ageMaxDays: z.int().min(1).max(60_000).nullable().default(null),
    low: limit.nullable().default(null),
    high: limit.nullable().default(null),
    warningLow: limit.nullable().default(null),
    warningHigh: limit.nullable().default(null),
    criticalLow: limit.nullable().default(null),
    criticalHigh: limit.nullable().default(null),
  })
  .refine((r) => r.ageMaxDays === null || r.ageMaxDays > r.ageMinDays, 'ageMaxDays must be above ageMinDays');
export const rangesBody = z.strictObject({
  /** The version this one replaces (null for a test's first): another's newer version is a 409. */
  basedOnVersion: z.int().min(1).nullable(),
  ranges: z.array(rangeRow).min(1).max(50),
});
export type RangeInput = z.infer<typeof rangeRow>;
export const rangesAnswer = z.looseObject({
  test: z.string(),
  currentVersion: z.int().nullable(),
  versions: z.array(
    z.looseObject({
      version: z.int(),
      unit: z.string(),
      createdAt: z.string(),
      ranges: z.array(z.looseObject({ sex: z.string(), ageMinDays: z.int(), ageMaxDays: z.int().nullable() })),
    }),
  ),
});
