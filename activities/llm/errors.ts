import AnthropicSdk from '@anthropic-ai/sdk';
import OpenAISdk from 'openai';
import { CIRCUIT_FAILURE_KINDS } from '../../db/llm-circuits';
import type { LlmProviderName } from './types';

/**
 * Why a provider attempt failed. Every kind is also a `summary_attempts.outcome`, so an attempt is recorded under
 * the name its error carries.
 */
export const LLM_ERROR_KINDS = [
  'rate_limited',
  'overloaded',
  'server_error',
  'timeout',
  'quota_exhausted',
  'auth',
  'not_configured',
  'refusal',
  'truncated',
  'prompt_truncated',
  'invalid_response',
  'cancelled',
] as const;
export type LlmErrorKind = (typeof LLM_ERROR_KINDS)[number];

export type LlmErrorAction = 'retry_same' | 'next_provider' | 'larger_budget_then_next';

export interface LlmErrorPolicy {
  action: LlmErrorAction;
  alertOperators: boolean;
}

/**
 * What each kind of failure leads to. Transient trouble at the provider is retried on the same provider (honouring
 * Retry-After up to LLM_MAX_RETRY_AFTER); anything retrying cannot fix moves on at once, and what only an operator
 * can fix (keys, billing, a model name the provider does not know) also alerts them.
 */
export const LLM_ERROR_POLICY: Readonly<Record<LlmErrorKind, LlmErrorPolicy>> = {
  rate_limited: { action: 'retry_same', alertOperators: false },
  overloaded: { action: 'retry_same', alertOperators: false },
  server_error: { action: 'retry_same', alertOperators: false },
  timeout: { action: 'retry_same', alertOperators: false },
  quota_exhausted: { action: 'next_provider', alertOperators: true },
  auth: { action: 'next_provider', alertOperators: true },
  not_configured: { action: 'next_provider', alertOperators: true },
  refusal: { action: 'next_provider', alertOperators: false },
  truncated: { action: 'larger_budget_then_next', alertOperators: false },
  prompt_truncated: { action: 'next_provider', alertOperators: false },
  invalid_response: { action: 'retry_same', alertOperators: false },
  cancelled: { action: 'retry_same', alertOperators: false },
};

const KIND_MEANING: Record<LlmErrorKind, string> = {
  rate_limited: 'HTTP 429 rate limit',
  overloaded: 'provider overloaded (Anthropic 529 `overloaded_error`, Ollama 503 busy)',
  server_error: 'HTTP 5xx, connection refused or reset',
  timeout: 'no answer within `LLM_TIMEOUT` (client timeout, hang, HTTP 408/504)',
  quota_exhausted:
    'out of credit or over a spend limit (OpenAI 429 `insufficient_quota`; Anthropic 402 `billing_error`, 400 credit balance / usage limit, 429 spend-limit codes; Ollama Cloud 429 usage limit)',
  auth: 'HTTP 401 / 403: key missing, wrong or not allowed',
  not_configured: 'HTTP 404 / 400 / 422: unknown model or a parameter the provider refuses',
  refusal: 'content refusal (Anthropic stop_reason `refusal`, OpenAI finish_reason `content_filter` or a `refusal`)',
  truncated: 'output cut at the token budget (`max_tokens`, `length`); never stored',
  prompt_truncated:
    'the prompt does not fit the context window (Ollama: estimate over `num_ctx`, or `prompt_eval_count` shows a cut; HTTP 413; context-length errors)',
  invalid_response: 'a 200 with a body that is not JSON or carries no text',
  cancelled: 'the activity was cancelled while the call was in flight',
};

const ACTION_TEXT: Record<LlmErrorAction, string> = {
  retry_same: 'retry the same provider (Retry-After honoured up to `LLM_MAX_RETRY_AFTER`, at most `LLM_MAX_ATTEMPTS` tries), then the next',
  next_provider: 'next provider at once',
  larger_budget_then_next: 'retry once with twice the token budget, then the next provider',
};

/** The policy table as README markdown, generated from the table the code uses. */
export function llmErrorPolicyMarkdown(): string {
  const rows = LLM_ERROR_KINDS.map((kind) => {
    const p = LLM_ERROR_POLICY[kind];
    return `| \`${kind}\` | ${KIND_MEANING[kind]} | ${ACTION_TEXT[p.action]} | ${p.alertOperators ? 'yes' : 'no'} | ${CIRCUIT_FAILURE_KINDS.has(kind) ? 'yes' : 'no'} |`;
  });
  return ['| outcome | when | what happens | operator alert | counts for the circuit |', '|---|---|---|---|---|', ...rows].join('\n');
}

/** How much larger the token budget is on the single retry after truncated output. */
export const TRUNCATION_BUDGET_FACTOR = 2;

/**
 * A failed provider call. The message names provider, kind, HTTP status and the provider's error type or code only:
 * provider error messages and bodies can echo the prompt, which is PHI.
 */
export class LlmError extends Error {
  readonly provider: LlmProviderName;
  readonly kind: LlmErrorKind;
  readonly httpStatus?: number;
  readonly retryAfterMs?: number;
  /** The provider's machine-readable error type or code (e.g. `rate_limit_error`, `insufficient_quota`). */
  readonly errorType?: string;
  readonly requestId?: string;

  constructor(
    provider: LlmProviderName,
    kind: LlmErrorKind,
    details: { httpStatus?: number; retryAfterMs?: number; errorType?: string; requestId?: string; note?: string } = {},
  ) {
    const parts = [
      details.httpStatus !== undefined ? `HTTP ${details.httpStatus}` : undefined,
      details.errorType,
      details.note,
      details.retryAfterMs !== undefined ? `retry after ${details.retryAfterMs} ms` : undefined,
      details.requestId ? `request ${details.requestId}` : undefined,
    ].filter(Boolean);
    super(`${provider}: ${kind}${parts.length ? ` (${parts.join(', ')})` : ''}`);
    this.name = 'LlmError';
    this.provider = provider;
    this.kind = kind;
    this.httpStatus = details.httpStatus;
    this.retryAfterMs = details.retryAfterMs;
    this.errorType = details.errorType;
    this.requestId = details.requestId;
  }
}

type HeaderSource = { get(name: string): string | null } | Record<string, string | string[] | undefined> | undefined | null;

function header(headers: HeaderSource, name: string): string | undefined {
  if (!headers) return undefined;
  if (typeof (headers as { get?: unknown }).get === 'function')
    return (headers as { get(n: string): string | null }).get(name) ?? undefined;
  const value = (headers as Record<string, string | string[] | undefined>)[name];
  return Array.isArray(value) ? value[0] : value;
}

/** `retry-after-ms`, else `retry-after` in seconds or as an HTTP date; undefined when absent or unreadable. */
export function retryAfterMs(headers: HeaderSource, now: number = Date.now()): number | undefined {
  const ms = header(headers, 'retry-after-ms');
  if (ms !== undefined && ms.trim() !== '' && Number.isFinite(Number(ms)) && Number(ms) >= 0) return Math.round(Number(ms));
  const value = header(headers, 'retry-after')?.trim();
  if (!value) return undefined;
  if (/^\d+(\.\d+)?$/.test(value)) return Math.round(Number(value) * 1000);
  const at = Date.parse(value);
  return Number.isNaN(at) ? undefined : Math.max(0, at - now);
}

// Matched against provider error messages only to classify; the text itself is never kept.
const CREDIT_OR_SPEND = /credit balance|purchase credits|billing|usage limit|spend(ing)? limit|quota/i;
const CONTEXT_TOO_LONG = /prompt is too long|context (length|window)|maximum context|too many tokens|input length/i;
const ANTHROPIC_SPEND_CODES = new Set([
  'contract_spend_limit_reached',
  'enforced_spend_limit_reached',
  'linked_organization_spend_limit_reached',
  'linked_organization_billing_unavailable',
]);
const OPENAI_QUOTA_CODES = new Set(['insufficient_quota', 'billing_hard_limit_reached', 'billing_not_active']);

function byStatus(status: number): LlmErrorKind {
  if (status === 401 || status === 403) return 'auth';
  if (status === 402) return 'quota_exhausted';
  if (status === 408 || status === 504) return 'timeout';
  if (status === 413) return 'prompt_truncated';
  if (status === 429) return 'rate_limited';
  if (status === 529) return 'overloaded';
  if (status === 409 || status >= 500) return 'server_error';
  return 'not_configured';
}

function anthropicKind(status: number, type: string | null, code: string | null, message: string): LlmErrorKind {
  if (type === 'billing_error' || (code && ANTHROPIC_SPEND_CODES.has(code))) return 'quota_exhausted';
  if (type === 'overloaded_error') return 'overloaded';
  if (type === 'timeout_error') return 'timeout';
  if ((status === 400 || status === 403) && CREDIT_OR_SPEND.test(message)) return 'quota_exhausted';
  if (status === 400 && CONTEXT_TOO_LONG.test(message)) return 'prompt_truncated';
  return byStatus(status);
}

function openaiKind(status: number, type: string | undefined, code: string | null | undefined, message: string): LlmErrorKind {
  if ((code && OPENAI_QUOTA_CODES.has(code)) || (type && OPENAI_QUOTA_CODES.has(type))) return 'quota_exhausted';
  if (code === 'context_length_exceeded' || code === 'string_above_max_length') return 'prompt_truncated';
  if (status === 503 && /overloaded|slow down/i.test(message)) return 'overloaded';
  return byStatus(status);
}

function ollamaKind(status: number, message: string): LlmErrorKind {
  if (status === 429 && CREDIT_OR_SPEND.test(message)) return 'quota_exhausted';
  if (status === 503) return 'overloaded';
  if (status === 400 && CONTEXT_TOO_LONG.test(message)) return 'prompt_truncated';
  return byStatus(status);
}

function isAbortLike(err: unknown): err is Error {
  return err instanceof Error && (err.name === 'AbortError' || err.name === 'TimeoutError');
}

/** Connection-level failures: refused, reset, DNS; `fetch failed` with its cause. */
function isConnectionFailure(err: unknown): boolean {
  if (!(err instanceof Error)) return false;
  const code = (err as { code?: unknown }).code ?? (err.cause as { code?: unknown } | undefined)?.code;
  return (
    (err.name === 'TypeError' && /fetch failed|network|terminated/i.test(err.message)) ||
    (typeof code === 'string' && /^(ECONN|EPIPE|ENOTFOUND|EAI_AGAIN|EHOSTUNREACH|ENETUNREACH|UND_ERR)/.test(code))
  );
}

function timedOut(err: unknown): boolean {
  if (!(err instanceof Error)) return false;
  const cause = err.cause as (Error & { code?: unknown }) | undefined;
  const text = [err.name, err.message, cause?.name, cause?.message, cause?.code, (err as { code?: unknown }).code].map(String).join(' ');
  return /timeout|timed? ?out/i.test(text);
}

/**
 * Maps whatever a provider SDK threw to an LlmError. `ResponseError` from ollama carries only a status and the
 * server's message; its Retry-After, when the adapter saw one, comes in `seen`.
 */
export function classifyLlmError(provider: LlmProviderName, err: unknown, seen: { retryAfterMs?: number } = {}): LlmError {
  if (err instanceof LlmError) return err;

  if (err instanceof AnthropicSdk.APIError || err instanceof OpenAISdk.APIError) {
    if (err instanceof AnthropicSdk.APIUserAbortError || err instanceof OpenAISdk.APIUserAbortError)
      return new LlmError(provider, 'cancelled');
    if (err instanceof AnthropicSdk.APIConnectionTimeoutError || err instanceof OpenAISdk.APIConnectionTimeoutError)
      return new LlmError(provider, 'timeout', { note: 'client timeout' });
    if (err instanceof AnthropicSdk.APIConnectionError || err instanceof OpenAISdk.APIConnectionError)
      return new LlmError(provider, 'server_error', { note: 'connection failed' });
    const status = err.status ?? 0;
    const message =
      err instanceof AnthropicSdk.APIError
        ? (err.apiMessage ?? '')
        : (((err.error as { message?: unknown } | undefined)?.message as string) ?? '');
    let kind: LlmErrorKind;
    let errorType: string | undefined;
    if (err instanceof AnthropicSdk.APIError) {
      kind = anthropicKind(status, err.type, err.errorCode, message);
      errorType = err.errorCode ?? err.type ?? undefined;
    } else {
      kind = openaiKind(status, err.type, err.code, message);
      errorType = err.code ?? err.type ?? undefined;
    }
    return new LlmError(provider, kind, {
      httpStatus: status || undefined,
      errorType: errorType ? String(errorType).slice(0, 80) : undefined,
      retryAfterMs: retryAfterMs(err.headers),
      requestId: err.requestID ?? undefined,
    });
  }

  if (err instanceof Error && err.name === 'ResponseError' && typeof (err as { status_code?: unknown }).status_code === 'number') {
    const status = (err as unknown as { status_code: number }).status_code;
    return new LlmError(provider, ollamaKind(status, err.message), { httpStatus: status, retryAfterMs: seen.retryAfterMs });
  }

  if (isAbortLike(err))
    return err.name === 'TimeoutError'
      ? new LlmError(provider, 'timeout', { note: 'client timeout' })
      : new LlmError(provider, 'cancelled');
  if (err instanceof SyntaxError) return new LlmError(provider, 'invalid_response', { note: 'body is not JSON' });
  if (isConnectionFailure(err)) return new LlmError(provider, timedOut(err) ? 'timeout' : 'server_error', { note: 'connection failed' });
  // Anything else from inside an SDK (a parse failure it wrapped, an unexpected shape) is an answer we cannot use.
  return new LlmError(provider, 'invalid_response', { note: err instanceof Error ? err.name : 'unknown failure' });
}

export type NextStep =
  { step: 'retry_same'; delayMs?: number } | { step: 'retry_larger_budget'; maxTokens: number } | { step: 'next_provider' };

/**
 * The policy applied to one failed attempt: `attempt` counts this provider's tries so far (1 for the first), and a
 * Retry-After longer than `maxRetryAfterMs` is not waited for.
 */
export function nextStep(
  err: LlmError,
  ctx: { attempt: number; maxAttempts: number; maxRetryAfterMs: number; maxTokens: number; budgetRaised: boolean },
): NextStep {
  const { action } = LLM_ERROR_POLICY[err.kind];
  if (action === 'next_provider') return { step: 'next_provider' };
  if (action === 'larger_budget_then_next') {
    return ctx.budgetRaised
      ? { step: 'next_provider' }
      : { step: 'retry_larger_budget', maxTokens: ctx.maxTokens * TRUNCATION_BUDGET_FACTOR };
  }
  if (ctx.attempt >= ctx.maxAttempts) return { step: 'next_provider' };
  if (err.retryAfterMs !== undefined && err.retryAfterMs > ctx.maxRetryAfterMs) return { step: 'next_provider' };
  return err.retryAfterMs !== undefined ? { step: 'retry_same', delayMs: err.retryAfterMs } : { step: 'retry_same' };
}
