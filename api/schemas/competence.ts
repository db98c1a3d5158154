import { z } from 'zod';
import { ASSESSMENT_METHODS, ASSESSMENT_OUTCOMES, AUTHORISATION_MEANING } from '../../common/competence';
import { GATED_ACTIVITY_PATTERN, SCOPE_PATTERN } from '../../db/gate';
import { isoDateTime, username } from './common';

const activity = z.string().max(80).regex(GATED_ACTIVITY_PATTERN, 'an activity such as result.verify, document.review.sop or instrument.operate');
const scope = z.string().max(64).regex(SCOPE_PATTERN, "'*' (every scope) or a code such as TSH or INS-0001").default('*');

export const requirementsBody = z.strictObject({ competency: z.boolean(), authorisation: z.boolean() });

export const assessmentBody = z.strictObject({
  username,
  activity,
  scope,
  method: z.enum(ASSESSMENT_METHODS),
  outcome: z.enum(ASSESSMENT_OUTCOMES),
  /** When the assessment took place; now when absent. Never in the future. */
  assessedAt: isoDateTime.optional(),
  evidence: z.string().max(2000).optional(),
});

export const authorisationBody = z.strictObject({
  username,
  activity,
  scope,
  validFrom: isoDateTime,
  validUntil: isoDateTime.optional(),
  signature: z.strictObject({
    password: z.string().min(1).max(200),
    meaning: z.literal(AUTHORISATION_MEANING),
    contentHash: z.string().regex(/^[0-9a-f]{64}$/, 'the SHA-256 hex digest of the authorisation statement'),
  }),
});

export const authorisationParams = z.object({ id: z.uuid() });
export const revokeBody = z.strictObject({ reason: z.string().trim().min(3).max(500) });
export const personParams = z.object({ username });
