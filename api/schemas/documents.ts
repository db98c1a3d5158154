import { z } from 'zod';
import { VERSION_STATES } from '../../common/document-approval';
import { DOC_TYPES } from '../../common/routing-templates';
import { trainingSubmission } from './training-requirement';
import { durationString, isoDateTime, pagination, role, signatureBody, text, username, boundedInt } from './common';

export const documentNumber = z
  .string()
  .regex(/^[A-Z][A-Z0-9]*(-[A-Z0-9]+){0,4}$/, 'not a document number (e.g. DOC-0042, SOP-QA-7)')
  .max(40);
export const documentParams = z.object({ number: documentNumber });
export const versionParams = z.object({ number: documentNumber, version: z.coerce.number().int().min(1).max(100_000) });

export const createDocumentBody = z.strictObject({
  title: text(200),
  docType: z.enum(DOC_TYPES),
  number: documentNumber.optional(),
});

/** Document control's edit of a document: at least one of title, type and owner. */
export const updateDocumentBody = z
  .strictObject({ title: text(200).optional(), docType: z.enum(DOC_TYPES).optional(), owner: username.optional() })
  .refine((body) => Object.values(body).some((v) => v !== undefined), { message: 'send at least one of title, docType, owner' });

export const docTypeParams = z.object({ docType: z.enum(DOC_TYPES) });

export const routingTemplateBody = z.strictObject({
  stages: z
    .array(
      z.strictObject({
        name: text(80),
        roles: z.array(role).min(1, 'a stage needs at least one role').max(11),
        required: z.boolean().default(true),
        minApprovals: z.number().int().min(1).max(50).default(1),
      }),
    )
    .min(1, 'a template needs at least one stage')
    .max(10),
  documentControlFinal: z.boolean(),
});

export const listDocumentsQuery = pagination.extend({
  state: z.enum(VERSION_STATES).optional(),
  docType: z.string().max(40).optional(),
  q: z.string().max(100).optional(),
});

const MAX_CONTENT = 512 * 1024;
export const contentBody = z.strictObject({
  content: z.string().min(1, 'must not be empty').max(MAX_CONTENT, `at most ${MAX_CONTENT} characters`),
  changeSummary: z.string().max(2000).optional(),
});

export const assigneeInput = z.union([z.strictObject({ user: username }), z.strictObject({ role })]);

const stageRule = z.discriminatedUnion('type', [
  z.strictObject({ type: z.literal('all') }),
  z.strictObject({ type: z.literal('any') }),
  z.strictObject({ type: z.literal('k_of_n'), k: boundedInt(1, 50) }),
]);

export const submitBody = z.strictObject({
  routing: z
    .array(
      z.strictObject({
        name: text(80),
        rule: stageRule.default({ type: 'all' }),
        assignees: z.array(assigneeInput).min(1, 'a stage needs at least one assignee').max(50),
        due: durationString.optional(),
      }),
    )
    .min(1, 'routing needs at least one stage')
    .max(10),
  reminderBefore: durationString.optional(),
  effectiveDate: isoDateTime.optional(),
  periodicReview: durationString.optional(),
  ...trainingSubmission,
});

export const decisionBody = z
  .strictObject({
    decision: z.enum(['approve', 'reject', 'request_changes']),
    comment: z.string().trim().max(4000).optional(),
    signature: signatureBody.optional(),
  })
  .superRefine((body, ctx) => {
    if (body.decision === 'approve' && !body.signature) {
      ctx.addIssue({
        code: 'custom',
        path: ['signature'],
        message: 'an approval is an electronic signature: send password, meaning and contentHash',
      });
    }
    if (body.decision !== 'approve' && !body.comment) {
      ctx.addIssue({ code: 'custom', path: ['comment'], message: `a comment is required to ${body.decision.replace('_', ' ')}` });
    }
  });

export const reasonBody = z.strictObject({ reason: text(2000) });
export const commentBody = z.strictObject({ comment: text(4000) });
export const reassignBody = z.strictObject({
  from: z.string().regex(/^(user|role):[a-z0-9._-]+$/, 'user:<username> or role:<role>'),
  to: assigneeInput,
  reason: text(2000),
});
export const extendBody = z.strictObject({ dueAt: isoDateTime, reason: text(2000) });
