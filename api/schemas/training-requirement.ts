import { z } from 'zod';
import { GRACE_POLICIES, TRAINING_IMPACTS } from '../../common/training';
import { boundedDuration, role } from './common';

/** The training requirement document control sets with a submission; applied when the version becomes effective. */
export const trainingRequirementBody = z.strictObject({
  roles: z.array(role).min(1, 'name at least one role').max(11),
  due: boundedDuration({ max: '365d' }).default('30d'),
  reminderBefore: boundedDuration({ max: '365d', allowZero: true }).default('3d'),
  retrainOnRevision: z.boolean().default(true),
  grace: z.enum(GRACE_POLICIES).default('until_due'),
});

/** What a submission may add for training (document control only). */
export const trainingSubmission = {
  training: trainingRequirementBody.optional(),
  trainingImpact: z.enum(TRAINING_IMPACTS).optional(),
};

