import type { Config } from '../../common/config';
import { durationMs } from '../../common/durations';
import type { CircuitPolicy } from '../../db/llm-circuits';
import { createAnthropicProvider } from './anthropic';
import { createOllamaProvider } from './ollama';
import { createOpenAIProvider } from './openai';
import { configuredLlmProviders } from '../../common/llm-providers';
import type { LlmProvider, LlmProviderName } from './types';

export interface LlmSetup {
  /** Only the providers that have their credentials or host. */
  providers: Partial<Record<LlmProviderName, LlmProvider>>;
  /** LLM_PROVIDERS in its order, without the skipped ones. */
  order: LlmProviderName[];
  /** Named in LLM_PROVIDERS but left out, and why (no secret in the reason). */
  skipped: { provider: LlmProviderName; reason: string }[];
  circuit: CircuitPolicy;
  /** Client-side bound of one provider call. */
  timeoutMs: number;
  maxTokens: number;
  /** Tries per provider for the kinds whose policy is retry_same. */
  maxAttempts: number;
  /** A longer Retry-After moves on to the next provider instead of waiting. */
  maxRetryAfterMs: number;
}

type LlmConfig = Pick<
  Config,
  | 'LLM_PROVIDERS'
  | 'ANTHROPIC_API_KEY'
  | 'ANTHROPIC_BASE_URL'
  | 'ANTHROPIC_MODEL'
  | 'OPENAI_API_KEY'
  | 'OPENAI_BASE_URL'
  | 'OPENAI_MODEL'
  | 'OLLAMA_HOST'
  | 'OLLAMA_MODEL'
  | 'OLLAMA_NUM_CTX'
  | 'LLM_TIMEOUT'
  | 'OLLAMA_TIMEOUT'
  | 'LLM_MAX_TOKENS'
  | 'LLM_MAX_ATTEMPTS'
  | 'LLM_MAX_RETRY_AFTER'
  | 'LLM_CIRCUIT_FAILURES'
  | 'LLM_CIRCUIT_COOLDOWN'
>;

export function llmSetupFromConfig(config: LlmConfig): LlmSetup {
  const { order, skipped } = configuredLlmProviders(config);
  const timeoutMs = durationMs(config.LLM_TIMEOUT);
  const create: Record<LlmProviderName, () => LlmProvider> = {
    anthropic: () =>
      createAnthropicProvider({ apiKey: config.ANTHROPIC_API_KEY!, baseUrl: config.ANTHROPIC_BASE_URL, model: config.ANTHROPIC_MODEL }),
    openai: () => createOpenAIProvider({ apiKey: config.OPENAI_API_KEY!, baseUrl: config.OPENAI_BASE_URL, model: config.OPENAI_MODEL }),
    ollama: () => createOllamaProvider({ host: config.OLLAMA_HOST!, model: config.OLLAMA_MODEL, numCtx: config.OLLAMA_NUM_CTX }),
  };
  const providers: Partial<Record<LlmProviderName, LlmProvider>> = Object.fromEntries(order.map((name) => [name, create[name]()]));
  return {
    providers,
    order,
    skipped,
    // A trial holds a half-open circuit as long as a call and the recording of its outcome can take, no longer:
    // a worker that dies mid-trial does not keep the provider shut.
    circuit: {
      failureThreshold: config.LLM_CIRCUIT_FAILURES,
      coolDownMs: durationMs(config.LLM_CIRCUIT_COOLDOWN),
      trialMs: Math.max(timeoutMs, durationMs(config.OLLAMA_TIMEOUT)) + 10_000,
    },
    timeoutMs,
    maxTokens: config.LLM_MAX_TOKENS,
    maxAttempts: config.LLM_MAX_ATTEMPTS,
    maxRetryAfterMs: durationMs(config.LLM_MAX_RETRY_AFTER),
  };
}
