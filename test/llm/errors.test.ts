import assert from 'node:assert/strict';
import AnthropicSdk from '@anthropic-ai/sdk';
import OpenAISdk from 'openai';
import {
  classifyLlmError,
  LLM_ERROR_KINDS,
  LLM_ERROR_POLICY,
  LlmError,
  llmErrorPolicyMarkdown,
  nextStep,
  retryAfterMs,
} from '../../activities/llm/errors';
import { CIRCUIT_FAILURE_KINDS } from '../../db/llm-circuits';

describe('the LLM error policy', () => {
  it('retries the same provider on rate limits, overload, server errors, timeouts and malformed answers', () => {
    for (const kind of ['rate_limited', 'overloaded', 'server_error', 'timeout', 'invalid_response'] as const) {
      assert.deepEqual(LLM_ERROR_POLICY[kind], { action: 'retry_same', alertOperators: false }, kind);
    }
  });

  it('moves on at once and alerts operators when out of quota or refused credentials', () => {
    for (const kind of ['quota_exhausted', 'auth', 'not_configured'] as const) {
      assert.deepEqual(LLM_ERROR_POLICY[kind], { action: 'next_provider', alertOperators: true }, kind);
    }
  });

  it('moves on without an alert after a refusal or a prompt that does not fit', () => {
    assert.deepEqual(LLM_ERROR_POLICY.refusal, { action: 'next_provider', alertOperators: false });
    assert.deepEqual(LLM_ERROR_POLICY.prompt_truncated, { action: 'next_provider', alertOperators: false });
  });

  it('retries truncated output once with a larger budget, then moves on', () => {
    assert.deepEqual(LLM_ERROR_POLICY.truncated, { action: 'larger_budget_then_next', alertOperators: false });
    const err = new LlmError('anthropic', 'truncated');
    const ctx = { attempt: 1, maxAttempts: 3, maxRetryAfterMs: 30_000, maxTokens: 2048 };
    assert.deepEqual(nextStep(err, { ...ctx, budgetRaised: false }), { step: 'retry_larger_budget', maxTokens: 4096 });
    assert.deepEqual(nextStep(err, { ...ctx, budgetRaised: true }), { step: 'next_provider' });
  });

  it('honours Retry-After within the bound and gives up on the provider beyond it or after the last attempt', () => {
    const ctx = { attempt: 1, maxAttempts: 3, maxRetryAfterMs: 30_000, maxTokens: 2048, budgetRaised: false };
    assert.deepEqual(nextStep(new LlmError('openai', 'rate_limited', { retryAfterMs: 2000 }), ctx), { step: 'retry_same', delayMs: 2000 });
    assert.deepEqual(nextStep(new LlmError('openai', 'rate_limited', { retryAfterMs: 60_000 }), ctx), { step: 'next_provider' });
    assert.deepEqual(nextStep(new LlmError('openai', 'server_error'), ctx), { step: 'retry_same' });
    assert.deepEqual(nextStep(new LlmError('openai', 'server_error'), { ...ctx, attempt: 3 }), { step: 'next_provider' });
    assert.deepEqual(nextStep(new LlmError('openai', 'auth'), ctx), { step: 'next_provider' });
  });

  it('counts only provider-health failures for the circuit breaker', () => {
    assert.deepEqual([...CIRCUIT_FAILURE_KINDS].sort(), [
      'auth',
      'invalid_response',
      'overloaded',
      'quota_exhausted',
      'rate_limited',
      'server_error',
      'timeout',
    ]);
  });

  it('renders as a README table with one row per kind', () => {
    const table = llmErrorPolicyMarkdown().split('\n');
    assert.equal(table.length, LLM_ERROR_KINDS.length + 2);
    assert.match(
      table.find((l) => l.startsWith('| `quota_exhausted`'))!,
      /next provider at once \| yes \| yes \|$/,
    );
  });
});

describe('classifying what an SDK threw', () => {
  it('reads Retry-After as seconds, as an HTTP date, and prefers retry-after-ms', () => {
    const now = Date.parse('2026-12-01T10:00:00Z');
    assert.equal(retryAfterMs({ 'retry-after': '3' }, now), 3000);
    assert.equal(retryAfterMs({ 'retry-after': 'Tue, 01 Dec 2026 10:00:10 GMT' }, now), 10_000);
    assert.equal(retryAfterMs({ 'retry-after': '3', 'retry-after-ms': '250' }, now), 250);
    assert.equal(retryAfterMs({ 'retry-after': 'soon' }, now), undefined);
    assert.equal(retryAfterMs(new Headers({ 'retry-after': '1.5' }), now), 1500);
  });

  it('treats refused connections as server errors and connect timeouts as timeouts', () => {
    const refused = Object.assign(new TypeError('fetch failed'), {
      cause: Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' }),
    });
    assert.equal(classifyLlmError('ollama', refused).kind, 'server_error');
    const slow = Object.assign(new TypeError('fetch failed'), {
      cause: Object.assign(new Error('Connect Timeout Error'), { code: 'UND_ERR_CONNECT_TIMEOUT' }),
    });
    assert.equal(classifyLlmError('ollama', slow).kind, 'timeout');
  });

  it('treats a body that is not JSON, or anything unrecognised, as an invalid response', () => {
    assert.equal(classifyLlmError('ollama', new SyntaxError('Unexpected end of JSON input')).kind, 'invalid_response');
    assert.equal(classifyLlmError('openai', new Error('something odd')).kind, 'invalid_response');
  });

  it('maps ollama status codes, telling a cloud usage limit from a rate limit', () => {
    const response = (status: number, message: string) => Object.assign(new Error(message), { name: 'ResponseError', status_code: status });
    assert.equal(classifyLlmError('ollama', response(404, "model 'x' not found, try pulling it first")).kind, 'not_configured');
    assert.equal(classifyLlmError('ollama', response(429, 'too many requests')).kind, 'rate_limited');
    assert.equal(classifyLlmError('ollama', response(429, 'you have reached your session usage limit')).kind, 'quota_exhausted');
    assert.equal(classifyLlmError('ollama', response(400, 'input length exceeds the context length')).kind, 'prompt_truncated');
    assert.equal(classifyLlmError('ollama', response(503, 'server busy')).kind, 'overloaded');
  });

  it('passes an LlmError through unchanged', () => {
    const err = new LlmError('anthropic', 'refusal');
    assert.equal(classifyLlmError('anthropic', err), err);
  });
});

describe('classifying what the Anthropic and OpenAI SDKs threw', () => {
  const anthropic = (status: number, type: string, message: string, extra: { errorCode?: string; headers?: Record<string, string> } = {}) =>
    classifyLlmError(
      'anthropic',
      AnthropicSdk.APIError.generate(
        status,
        { type: 'error', error: { type, message, ...(extra.errorCode ? { details: { error_code: extra.errorCode } } : {}) } },
        undefined,
        new Headers({ 'request-id': 'req_1', ...extra.headers }),
      ),
    );
  const openai = (status: number, error: { code?: string; type?: string; message: string }, headers: Record<string, string> = {}) =>
    classifyLlmError('openai', OpenAISdk.APIError.generate(status, { error }, undefined, new Headers(headers)));

  it('maps Anthropic error types before status codes: billing, spend limits, overload, timeouts', () => {
    assert.equal(anthropic(400, 'billing_error', 'Your credit balance is too low').kind, 'quota_exhausted');
    assert.equal(anthropic(400, 'invalid_request_error', 'limit', { errorCode: 'enforced_spend_limit_reached' }).kind, 'quota_exhausted');
    assert.equal(anthropic(400, 'invalid_request_error', 'Your credit balance is too low to access the API').kind, 'quota_exhausted');
    assert.equal(anthropic(529, 'overloaded_error', 'Overloaded').kind, 'overloaded');
    assert.equal(anthropic(504, 'timeout_error', 'Request timed out').kind, 'timeout');
    assert.equal(anthropic(400, 'invalid_request_error', 'prompt is too long: 210000 tokens > 200000 maximum').kind, 'prompt_truncated');
  });

  it('maps the remaining Anthropic statuses, and keeps the status, error type, request ID and Retry-After', () => {
    assert.equal(anthropic(401, 'authentication_error', 'invalid x-api-key').kind, 'auth');
    assert.equal(anthropic(404, 'not_found_error', 'model: claude-x').kind, 'not_configured');
    assert.equal(anthropic(500, 'api_error', 'Internal server error').kind, 'server_error');
    const limited = anthropic(429, 'rate_limit_error', 'Number of requests has exceeded your rate limit', {
      headers: { 'retry-after': '7' },
    });
    assert.equal(limited.kind, 'rate_limited');
    assert.equal(limited.httpStatus, 429);
    assert.equal(limited.errorType, 'rate_limit_error');
    assert.equal(limited.retryAfterMs, 7000);
    assert.equal(limited.requestId, 'req_1');
  });

  it('maps OpenAI quota codes, context length and overload before status codes', () => {
    assert.equal(
      openai(429, { code: 'insufficient_quota', type: 'insufficient_quota', message: 'You exceeded your current quota' }).kind,
      'quota_exhausted',
    );
    assert.equal(
      openai(400, { code: 'context_length_exceeded', message: "This model's maximum context length is 128000 tokens" }).kind,
      'prompt_truncated',
    );
    assert.equal(openai(503, { message: 'The engine is currently overloaded, please try again later' }).kind, 'overloaded');
    assert.equal(openai(503, { message: 'Service unavailable' }).kind, 'server_error');
    const limited = openai(429, { code: 'rate_limit_exceeded', message: 'Rate limit reached' }, { 'retry-after-ms': '1200' });
    assert.equal(limited.kind, 'rate_limited');
    assert.equal(limited.retryAfterMs, 1200);
    assert.equal(openai(401, { code: 'invalid_api_key', message: 'Incorrect API key provided' }).kind, 'auth');
    assert.equal(openai(408, { message: 'Request timeout' }).kind, 'timeout');
  });

  it('tells a cancelled call from a client timeout and a failed connection', () => {
    assert.equal(classifyLlmError('anthropic', new AnthropicSdk.APIUserAbortError()).kind, 'cancelled');
    assert.equal(classifyLlmError('openai', new OpenAISdk.APIConnectionTimeoutError()).kind, 'timeout');
    assert.equal(classifyLlmError('openai', new OpenAISdk.APIConnectionError({ message: 'Connection error.' })).kind, 'server_error');
    assert.equal(classifyLlmError('ollama', Object.assign(new Error('aborted'), { name: 'AbortError' })).kind, 'cancelled');
    assert.equal(classifyLlmError('ollama', Object.assign(new Error('signal timed out'), { name: 'TimeoutError' })).kind, 'timeout');
  });
});
