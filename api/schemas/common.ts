import { z } from 'zod';
import { type DurationBounds, dateProblem, durationProblem } from '../../common/durations';
import { ROLES } from '../../common/roles';
import { SIGNATURE_MEANINGS } from '../../common/signatures';

/**
 * A refusal of a well-formed value that lies outside labflow's bounds; the API answers 422 `out-of-bounds` when
 * every issue of a request is one of these (400 otherwise).
 */
export const OUT_OF_BOUNDS = 'out-of-bounds';
const outOfBounds = (message: string) => ({ code: 'custom' as const, message, params: { kind: OUT_OF_BOUNDS } });
/** The schemas of bounded values, so that the OpenAPI document can name 422 where a request holds one. */
export const boundedValues = z.registry();

const FORMAT = 'expected a duration such as 30s, 15m, 72h or 365d';

/** A duration within `bounds` (by default longer than zero and at most ten years). */
export const boundedDuration = (bounds: DurationBounds = {}) =>
  z
    .string()
    .superRefine((value, ctx) => {
      const problem = durationProblem(value, bounds);
      if (problem) ctx.addIssue(problem === FORMAT ? { code: 'custom', message: problem } : outOfBounds(problem));
    })
    .register(boundedValues);
export const durationString = boundedDuration();

/** An ISO 8601 instant with its offset, from 1900 to a century from now. */
export const isoDateTime = z.iso.datetime({ offset: true }).superRefine((value, ctx) => {
  const problem = dateProblem(value, Date.now());
  if (problem) ctx.addIssue(problem === 'not a date' ? { code: 'custom', message: problem } : outOfBounds(problem));
}).register(boundedValues);

/** A calendar date (YYYY-MM-DD) from 1900 to a century from now. */
export const isoDate = z.iso.date('a date as YYYY-MM-DD').superRefine((value, ctx) => {
  const problem = dateProblem(`${value}T00:00:00Z`, Date.now());
  if (problem) ctx.addIssue(problem === 'not a date' ? { code: 'custom', message: problem } : outOfBounds(problem));
}).register(boundedValues);
export const role = z.enum(ROLES);
export const username = z.string().regex(/^[a-z0-9._-]{2,64}$/, 'not a username');
export const text = (max: number) => z.string().trim().min(1, 'must not be empty').max(max);

/** PostgreSQL's `integer`: a whole number beyond it would reach the database only to be refused there. */
export const INT32_MAX = 2_147_483_647;
/** A whole number in a JSON body, within [min, max] and never beyond an `integer` column. */
export const boundedInt = (min: number, max = INT32_MAX) => z.number().int().min(min).max(Math.min(max, INT32_MAX));
/** A whole number in a query string or path ("20"), within [min, max]; "NaN", "1e308" and "-1" are refused. */
export const queryInt = (min: number, max = INT32_MAX) => z.coerce.number().int().min(min).max(Math.min(max, INT32_MAX));
/** How many rows a list skips: no list is a million rows deep. */
export const pageOffset = queryInt(0, 1_000_000).default(0);

export const pagination = z.object({
  limit: queryInt(1, 200).default(50),
  offset: pageOffset,
});
export const flagParam = z.enum(['1', '0', 'true', 'false']).transform((v) => v === '1' || v === 'true');

/** An electronic signature as a signer sends it: password (re-authentication), meaning, and the hash they saw. */
export const signatureBody = z.strictObject({
  password: z.string().min(1).max(200),
  meaning: z.enum(SIGNATURE_MEANINGS),
  contentHash: z.string().regex(/^[0-9a-f]{64}$/, 'a SHA-256 hex digest'),
});
