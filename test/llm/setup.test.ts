import assert from 'node:assert/strict';
import { llmSetupFromConfig } from '../../activities/llm/setup';
import { loadConfig } from '../../common/config';
import { startLlmStub } from '../helpers/llm-stubs';
import { buildSummaryPrompt } from '../../activities/llm/prompt';
import { SAMPLE_NOTES } from './sample-notes';

describe('the LLM setup from configuration', () => {
  it('skips every provider without its key or host, saying why', () => {
    const setup = llmSetupFromConfig(loadConfig({}));
    assert.deepEqual(setup.order, []);
    assert.deepEqual(setup.providers, {});
    assert.deepEqual(
      setup.skipped.map((s) => s.reason),
      ['ANTHROPIC_API_KEY is not set', 'OPENAI_API_KEY is not set', 'OLLAMA_HOST is not set'],
    );
  });

  it('keeps the configured order among the providers that are set up, with the configured models', () => {
    const setup = llmSetupFromConfig(
      loadConfig({
        LLM_PROVIDERS: 'ollama, anthropic',
        ANTHROPIC_API_KEY: 'sk-ant-x',
        OPENAI_API_KEY: 'sk-x',
        OLLAMA_HOST: 'http://127.0.0.1:11434',
      }),
    );
    assert.deepEqual(setup.order, ['ollama', 'anthropic']);
    assert.equal(setup.providers.openai, undefined, 'not named in LLM_PROVIDERS');
    assert.equal(setup.providers.anthropic?.model, 'claude-sonnet-4-6');
    assert.equal(setup.providers.ollama?.model, 'llama3.1:8b');
  });

  it('turns durations and bounds into numbers', () => {
    const setup = llmSetupFromConfig(
      loadConfig({
        LLM_TIMEOUT: '45s',
        OLLAMA_TIMEOUT: '30s',
        LLM_MAX_RETRY_AFTER: '20s',
        LLM_CIRCUIT_COOLDOWN: '2m',
        LLM_CIRCUIT_FAILURES: '4',
        LLM_MAX_ATTEMPTS: '2',
      }),
    );
    assert.equal(setup.timeoutMs, 45_000);
    assert.equal(setup.maxRetryAfterMs, 20_000);
    assert.equal(setup.maxAttempts, 2);
    assert.equal(setup.maxTokens, 2048);
    assert.deepEqual(setup.circuit, { failureThreshold: 4, coolDownMs: 120_000, trialMs: 55_000 });
  });

  it('refuses an unknown provider name', () => {
    assert.throws(() => loadConfig({ LLM_PROVIDERS: 'anthropic,gemini' }), /LLM_PROVIDERS/);
  });

  it('builds adapters that reach the configured base URLs', async () => {
    const [anthropic, openai] = await Promise.all([
      startLlmStub('anthropic', { apiKey: 'sk-ant-x' }),
      startLlmStub('openai', { apiKey: 'sk-x' }),
    ]);
    try {
      const setup = llmSetupFromConfig(
        loadConfig({
          ANTHROPIC_API_KEY: 'sk-ant-x',
          ANTHROPIC_BASE_URL: anthropic.url,
          OPENAI_API_KEY: 'sk-x',
          OPENAI_BASE_URL: openai.url,
        }),
      );
      const prompt = buildSummaryPrompt(SAMPLE_NOTES, { dateOfBirth: '1961-05-02' });
      const options = { maxTokens: setup.maxTokens, temperature: 0, timeoutMs: 5000 };
      assert.equal((await setup.providers.anthropic!.generate(prompt, options)).model, 'claude-sonnet-4-6');
      assert.equal((await setup.providers.openai!.generate(prompt, options)).model, 'gpt-4.1-2025-04-14');
      assert.ok(
        anthropic.requests[0].headers['x-api-key'] === 'sk-ant-x' || anthropic.requests[0].headers.authorization === 'Bearer sk-ant-x',
      );
      assert.equal(openai.requests[0].headers.authorization, 'Bearer sk-x');
    } finally {
      await Promise.all([anthropic.stop(), openai.stop()]);
    }
  });
});
