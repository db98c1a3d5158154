import { z } from 'zod';
import { ACTION_TYPES, CAPA_STAGES, ROOT_CAUSE_METHODS, SOURCE_TYPES } from '../../common/capa';
import { durationString, isoDateTime, pagination, signatureBody, text, username } from './common';

export const capaNumber = z.string().regex(/^CAPA-\d{4}-\d{4,}$/, 'not a CAPA number (e.g. CAPA-2026-0007)');
export const capaParams = z.object({ number: capaNumber });
export const actionParams = z.object({ number: capaNumber, actionId: z.string().regex(/^A\d{1,3}$/, 'an action ID such as A1') });

export const sourceInput = z.strictObject({ type: z.enum(SOURCE_TYPES), id: text(120) });
const durations = z
  .strictObject({
    containment: durationString,
    investigation: durationString,
    effectivenessWait: durationString,
    reminderBefore: durationString,
  })
  .partial();

export const createCapaBody = z.strictObject({
  title: text(200),
  description: text(4000),
  sources: z.array(sourceInput).max(50).default([]),
  /** Create a new CAPA even though an open one already names one of these sources. */
  allowDuplicate: z.boolean().default(false),
  durations: durations.optional(),
  maxExtensions: z.number().int().min(0).max(10).optional(),
  reopenWindow: durationString.optional(),
});

export const linkSourcesBody = z.strictObject({ sources: z.array(sourceInput).min(1).max(50) });

const assignee = z.union([z.strictObject({ user: username }), z.strictObject({ role: z.literal('qa_manager') })]);
export const triageBody = z.discriminatedUnion('decision', [
  z.strictObject({
    decision: z.literal('accept'),
    severity: z.number().int().min(1).max(5),
    occurrence: z.number().int().min(1).max(5),
    owner: username,
    reason: z.string().trim().max(2000).optional(),
    durations: durations.optional(),
  }),
  z.strictObject({ decision: z.literal('unfounded'), reason: text(2000) }),
  z.strictObject({ decision: z.literal('merge'), mergeInto: capaNumber, reason: text(2000) }),
]);

export const containmentBody = z.strictObject({ summary: text(4000), actions: z.array(text(1000)).max(50).default([]) });
export const investigationBody = z.strictObject({ method: z.enum(ROOT_CAUSE_METHODS), rootCause: text(4000), findings: text(8000) });
export const planBody = z.strictObject({
  actions: z
    .array(z.strictObject({ type: z.enum(ACTION_TYPES), description: text(2000), owner: assignee, dueAt: isoDateTime }))
    .min(1, 'a plan needs at least one action')
    .max(50),
  criteria: z
    .array(z.strictObject({ description: text(2000), measure: text(1000) }))
    .min(1, 'measurable effectiveness criteria are defined before implementation')
    .max(20),
});
export const planDecisionBody = z
  .strictObject({
    decision: z.enum(['approve', 'reject']),
    signature: signatureBody.optional(),
    comment: z.string().trim().max(4000).optional(),
  })
  .refine((b) => b.decision !== 'approve' || b.signature, { message: 'an approval must be signed', path: ['signature'] })
  .refine((b) => b.decision !== 'reject' || b.comment, { message: 'a rejection needs a comment', path: ['comment'] });
export const completeActionBody = z.strictObject({
  evidence: text(8000),
  attachments: z.array(text(500)).max(50).default([]),
});
export const extensionBody = z.strictObject({ dueAt: isoDateTime, reason: text(2000) });
export const extensionDecisionBody = z.strictObject({ approve: z.boolean(), reason: text(2000) });
export const effectivenessBody = z.strictObject({
  results: z
    .array(z.strictObject({ criterionId: z.string().regex(/^C\d{1,3}$/), met: z.boolean(), evidence: text(4000) }))
    .min(1)
    .max(20),
  comment: z.string().trim().max(4000).default(''),
});
export const closeBody = z
  .strictObject({
    signature: signatureBody,
    comment: z.string().trim().max(4000).optional(),
    /** QA's verdict on supplier(s) the CAPA names (sources of type supplier), written to the ERP as their hold. */
    supplierAction: z.enum(['approve', 'suspend', 'disqualify']).optional(),
    /** The suppliers the verdict is for, named explicitly: each a supplier source of the CAPA; no other is touched. */
    suppliers: z.array(text(120)).min(1).max(50).optional(),
  })
  .refine((b) => !b.supplierAction || b.suppliers, { message: 'a supplier verdict names its suppliers', path: ['suppliers'] })
  .refine((b) => !b.suppliers || b.supplierAction, { message: 'suppliers are named only with a supplier verdict', path: ['supplierAction'] });
export const reasonBody = z.strictObject({ reason: text(2000) });
export const deactivatedBody = z.strictObject({ username });

export const listCapasQuery = pagination.extend({
  stage: z.enum(CAPA_STAGES).optional(),
  owner: username.optional(),
  overdue: z
    .enum(['1', '0', 'true', 'false'])
    .transform((v) => v === '1' || v === 'true')
    .optional(),
  risk: z.enum(['low', 'medium', 'high']).optional(),
  sourceType: z.enum(SOURCE_TYPES).optional(),
  sourceId: z.string().max(120).optional(),
});
