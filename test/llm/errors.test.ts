import assert from 'node:assert/strict';
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
