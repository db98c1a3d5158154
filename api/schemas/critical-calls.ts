import { z } from 'zod';
import { CALL_OUTCOMES, CRITICAL_CALL_STATES, WITHDRAWAL_REASONS } from '../../common/critical-calls';
import { queryInt, text } from './common';

export const criticalCallListQuery = z.object({
  /** `open` (default): calling or escalated; or one state (`withdrawn`: the value stopped being critical). */
  state: z.enum(['open', ...CRITICAL_CALL_STATES]).default('open'),
  limit: queryInt(1, 200).default(50),
  cursor: z.string().max(200).optional(),
});

export const attemptBody = z.strictObject({
  /** The client's ID for this attempt: the same ID again is applied once and answered as the first. */
  requestId: z.string().regex(/^[A-Za-z0-9._:-]{1,100}$/, 'a request ID of letters, digits and . _ : -'),
  /** Whom the caller called: the requisition's ordering provider, or another person by name (a covering clinician). */
  called: z.union([z.literal('ordering_provider'), z.strictObject({ name: text(200) })]),
  outcome: z.enum(CALL_OUTCOMES),
  /** The value as the person called read it back (required with CONFIRMED, refused with any other outcome). */
  readBack: text(100).optional(),
  note: text(1000).optional(),
});
export type AttemptBody = z.infer<typeof attemptBody>;

const callSummary = {
  workflowId: z.string(),
  accession: z.string(),
  test: z.string(),
  retestNumber: z.int(),
  flag: z.enum(['critical_low', 'critical_high']),
  state: z.enum(CRITICAL_CALL_STATES),
  orderingProvider: z.object({ username: z.string(), printedName: z.string() }).nullable(),
  openedAt: z.string(),
  deadlineAt: z.string(),
  maxAttempts: z.int(),
  attempts: z.int(),
  escalatedAt: z.string().nullable(),
  escalationReason: z.enum(['attempts', 'deadline', 'no_ordering_provider']).nullable(),
  notifiedAt: z.string().nullable(),
  callNumber: z.int().describe("the analysis's calls in turn: a value critical again after a withdrawal (or a confirmed call) opens the next"),
  withdrawnAt: z.string().nullable(),
  withdrawalReason: z
    .enum(WITHDRAWAL_REASONS)
    .nullable()
    .describe('why the call was withdrawn before anyone read the value back: edited to a value that is not critical, retracted, rejected, cancelled'),
};

export const criticalCallListAnswer = z.object({
  items: z.array(z.object(callSummary)),
  nextCursor: z.string().nullable(),
});

export const attemptAnswer = z.object({
  seq: z.int(),
  requestId: z.string(),
  calledBy: z.object({ username: z.string(), printedName: z.string() }),
  called: z.object({ kind: z.enum(['ordering_provider', 'other']), name: z.string() }),
  outcome: z.enum(CALL_OUTCOMES).describe('CONFIRMED only when the read-back matched the stored value'),
  reportedOutcome: z.enum(CALL_OUTCOMES).describe('what the caller reported'),
  readBack: z.string().nullable(),
  readBackMatches: z.boolean().nullable(),
  note: z.string().nullable(),
  afterEscalation: z.boolean(),
  attemptedAt: z.string().describe("the database server's time"),
});

export const criticalCallAnswer = z.object({
  ...callSummary,
  /** The value to call, read from the record (a PHI read, logged as an access event). */
  result: z.object({ value: z.number().nullable(), unit: z.string().nullable(), flag: z.string().nullable() }),
  attempts: z.int(),
  attemptLog: z.array(attemptAnswer),
});

export const attemptResultAnswer = z.object({
  attempt: attemptAnswer,
  duplicate: z.boolean().describe('true when this request ID was recorded before; nothing new was written'),
  call: z.object({ workflowId: z.string(), state: z.enum(CRITICAL_CALL_STATES), attempts: z.int(), failedAttempts: z.int() }),
});
