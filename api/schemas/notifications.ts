import { z } from 'zod';
import { CHANNELS, PRIORITIES } from '../../common/notifications';

const record = z.looseObject;
const timestamp = z.string().describe('ISO 8601 instant');

export const preferencesUpdateBody = z
  .strictObject({
    channels: z.array(z.enum(CHANNELS)).max(CHANNELS.length).refine((c) => new Set(c).size === c.length, 'each channel once').optional(),
    slackWebhookUrl: z.string().max(500).url('expected an absolute URL').nullable().optional(),
    phoneNumber: z
      .string()
      .regex(/^\+[1-9][0-9]{6,14}$/, 'expected an E.164 number such as +41791234567')
      .nullable()
      .optional(),
  })
  .refine((b) => Object.keys(b).length > 0, 'name at least one field to change');

export const userIdParams = z.strictObject({ userId: z.uuid('expected a user ID (UUID)') });
export const noticeIdParams = z.strictObject({ id: z.uuid('expected a notice ID (UUID)') });

export const preferences = record({
  userId: z.string(),
  channels: z.array(z.enum(CHANNELS)),
  slackWebhookSet: z.boolean(),
  phoneNumber: z.string().nullable(),
  updatedAt: timestamp.nullable(),
});

export const notice = record({
  id: z.string(),
  kind: z.string(),
  templateVersion: z.int(),
  priority: z.enum(PRIORITIES),
  subjectType: z.string(),
  subjectId: z.string(),
  state: z.enum(['open', 'acknowledged', 'delivered', 'unanswered']),
  step: z.int(),
  acknowledgedBy: z.string().nullable(),
  acknowledgedAt: timestamp.nullable(),
  createdAt: timestamp,
  deliveries: z.array(
    record({
      userId: z.string(),
      step: z.int(),
      channel: z.string(),
      state: z.enum(['pending', 'sent', 'failed', 'skipped']),
      attempts: z.int(),
      error: z.string().nullable(),
    }),
  ),
});

export const acknowledged = record({ noticeId: z.string(), acknowledged: z.boolean(), step: z.int() });
