import { ApplicationFailure, log } from '@temporalio/activity';
import { recordCircuitOutcome } from '../../db/llm-circuits';
import type { ActivityDeps } from '../deps';
import { deliverOutbox } from '../notifications';
import { LLM_ERROR_POLICY, type LlmError, type LlmErrorKind } from './errors';
import { alertOperators } from './operator-alert';
import type { LlmSetup } from './setup';
import type { LlmProviderName } from './types';

/** ApplicationFailure types by error kind; the run moves on to the next provider for the non-retryable ones. */
export const LLM_FAILURE_TYPES: Record<LlmErrorKind | 'circuit_open' | 'not_configured' | 'retry_after_too_long', string> = {
  rate_limited: 'LlmRateLimited',
  overloaded: 'LlmOverloaded',
  server_error: 'LlmServerError',
  timeout: 'LlmTimeout',
  invalid_response: 'LlmInvalidResponse',
  quota_exhausted: 'LlmQuotaExhausted',
  auth: 'LlmAuth',
  refusal: 'LlmRefusal',
  truncated: 'LlmTruncated',
  prompt_truncated: 'LlmPromptTruncated',
  circuit_open: 'LlmCircuitOpen',
  not_configured: 'LlmNotConfigured',
  retry_after_too_long: 'LlmRetryAfterTooLong',
  cancelled: 'LlmCancelled',
};

/**
 * A provider call failed (its attempt already recorded by the caller): the circuit counts it, operators are
 * alerted where the error table says so, and the failure Temporal sees is built from the table: retryable (with
 * the provider's Retry-After as the next delay, unless longer than LLM_MAX_RETRY_AFTER) or not.
 */
export async function providerFailure(
  { db, mailer, mailDomain }: Pick<ActivityDeps, 'db' | 'mailer' | 'mailDomain'>,
  llm: LlmSetup,
  provider: LlmProviderName,
  err: LlmError,
  what: string,
): Promise<ApplicationFailure> {
  const policy = LLM_ERROR_POLICY[err.kind];
  await recordCircuitOutcome(db, provider, 'failure', err.kind, llm.circuit);
  if (policy.alertOperators) {
    const outboxIds = await alertOperators(db, mailDomain, { provider, kind: err.kind });
    await deliverOutbox({ db, mailer }, outboxIds);
  }
  log.warn(`${what} attempt failed`, { provider, kind: err.kind, status: err.httpStatus ?? null });
  const type = LLM_FAILURE_TYPES[err.kind];
  if (policy.action === 'retry_same') {
    if (err.retryAfterMs !== undefined && err.retryAfterMs > llm.maxRetryAfterMs) {
      return ApplicationFailure.create({
        type: LLM_FAILURE_TYPES.retry_after_too_long,
        message: `${provider}: asked to wait ${err.retryAfterMs} ms`,
        nonRetryable: true,
      });
    }
    return ApplicationFailure.create({
      type,
      message: err.message,
      nonRetryable: false,
      ...(err.retryAfterMs !== undefined ? { nextRetryDelay: err.retryAfterMs } : {}),
    });
  }
  return ApplicationFailure.create({ type, message: err.message, nonRetryable: true });
}

/** How long the provider call may take within the activity's own timeout, leaving time to record its outcome. */
export function callTimeoutMs(activityMs: number): number {
  return Math.max(activityMs - 2000, Math.min(1000, Math.floor(activityMs * 0.75)));
}
