import { z } from 'zod';
import { isDuration } from '../../common/durations';
import { ROLES } from '../../common/roles';
import { SIGNATURE_MEANINGS } from '../../common/signatures';

export const durationString = z.string().refine(isDuration, 'expected a duration such as 30s, 15m, 72h or 365d');
export const isoDateTime = z.iso.datetime({ offset: true });
export const role = z.enum(ROLES);
export const username = z.string().regex(/^[a-z0-9._-]{2,64}$/, 'not a username');
export const text = (max: number) => z.string().trim().min(1, 'must not be empty').max(max);

export const pagination = z.object({
  limit: z.coerce.number().int().min(1).max(200).default(50),
  offset: z.coerce.number().int().min(0).default(0),
});
export const flagParam = z.enum(['1', '0', 'true', 'false']).transform((v) => v === '1' || v === 'true');

/** An electronic signature as a signer sends it: password (re-authentication), meaning, and the hash they saw. */
export const signatureBody = z.strictObject({
  password: z.string().min(1).max(200),
  meaning: z.enum(SIGNATURE_MEANINGS),
  contentHash: z.string().regex(/^[0-9a-f]{64}$/, 'a SHA-256 hex digest'),
});
