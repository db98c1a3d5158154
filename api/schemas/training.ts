import { z } from 'zod';
import { GATED_ACTIVITY_PATTERN } from '../../db/gate';
import { READ_AND_UNDERSTOOD } from '../../common/training';
import { documentNumber } from './documents';
import { flagParam, queryInt, role, username } from './common';
import { cursorParam } from './patients';

export const assignmentParams = z.object({
  username,
  number: documentNumber,
  version: z.coerce.number().int().min(1).max(100_000),
});

export const signOffBody = z.strictObject({
  signature: z.strictObject({
    password: z.string().min(1).max(200),
    meaning: z.literal(READ_AND_UNDERSTOOD),
    contentHash: z.string().regex(/^[0-9a-f]{64}$/, 'a SHA-256 hex digest'),
  }),
});

const keysetPage = z.strictObject({ limit: queryInt(1, 200).default(50), after: cursorParam });

export const myTrainingQuery = keysetPage.extend({ all: flagParam.default(false) });
export const matrixQuery = keysetPage;
export const roleParams = z.object({ role });

export const activityParams = z.object({
  activity: z.string().max(80).regex(GATED_ACTIVITY_PATTERN, "an activity such as document.review.sop or capa.verify_effectiveness"),
});
export const governingBody = z.strictObject({ documents: z.array(documentNumber).max(50) });
