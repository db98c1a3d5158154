import type { Config } from './config';

/** The LLM providers labflow can summarize with, in the order a configuration may name them. */
export const LLM_PROVIDERS = ['anthropic', 'openai', 'ollama'] as const;
export type LlmProviderName = (typeof LLM_PROVIDERS)[number];

const CREDENTIAL = { anthropic: 'ANTHROPIC_API_KEY', openai: 'OPENAI_API_KEY', ollama: 'OLLAMA_HOST' } as const;

export type LlmProviderConfig = Pick<Config, 'LLM_PROVIDERS' | (typeof CREDENTIAL)[LlmProviderName]>;

/**
 * LLM_PROVIDERS in its order, known names once each, split into those with their key (or, for Ollama, host) and
 * those skipped because asking them could only fail. The worker builds clients for the first; the API offers them.
 */
export function configuredLlmProviders(config: LlmProviderConfig): {
  order: LlmProviderName[];
  skipped: { provider: LlmProviderName; reason: string }[];
} {
  const named = [...new Set(config.LLM_PROVIDERS.split(',').map((p) => p.trim()))].filter((p): p is LlmProviderName =>
    (LLM_PROVIDERS as readonly string[]).includes(p),
  );
  return {
    order: named.filter((p) => config[CREDENTIAL[p]]),
    skipped: named.filter((p) => !config[CREDENTIAL[p]]).map((provider) => ({ provider, reason: `${CREDENTIAL[provider]} is not set` })),
  };
}
