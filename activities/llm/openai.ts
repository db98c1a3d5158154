import OpenAI from 'openai';
import { classifyLlmError, LlmError } from './errors';
import type { GenerateOptions, Generation, LlmProvider, SummaryPrompt } from './types';

export interface OpenAIProviderOptions {
  apiKey: string;
  /** Including the version path, like the SDK's own (default https://api.openai.com/v1). */
  baseUrl?: string;
  model: string;
}

/** Reasoning models accept only their default temperature and refuse any other. */
const FIXED_TEMPERATURE = /^(o\d|gpt-5)(?!.*-chat)/;

/** Chat Completions, non-streaming, with the SDK's own retries off: Temporal retries. */
export function createOpenAIProvider(opts: OpenAIProviderOptions): LlmProvider {
  // The SDK's debug log carries request and response bodies (PHI); failures reach us as exceptions instead.
  const client = new OpenAI({
    apiKey: opts.apiKey,
    organization: null,
    project: null,
    baseURL: opts.baseUrl ?? null,
    maxRetries: 0,
    logLevel: 'off',
  });
  return {
    name: 'openai',
    model: opts.model,
    async generate(prompt: SummaryPrompt, options: GenerateOptions): Promise<Generation> {
      const parameters: { model: string; max_completion_tokens: number; temperature?: number } = {
        model: opts.model,
        max_completion_tokens: options.maxTokens,
      };
      if (!FIXED_TEMPERATURE.test(opts.model)) parameters.temperature = options.temperature;
      let completion: OpenAI.Chat.Completions.ChatCompletion;
      try {
        completion = await client.chat.completions.create(
          {
            ...parameters,
            messages: [
              { role: 'system', content: prompt.system },
              { role: 'user', content: prompt.user },
            ],
          },
          { timeout: options.timeoutMs, signal: options.signal, maxRetries: 0 },
        );
      } catch (err) {
        throw classifyLlmError('openai', err);
      }
      const choice = Array.isArray(completion?.choices) ? completion.choices[0] : undefined;
      if (!choice || !choice.message) throw new LlmError('openai', 'invalid_response', { note: 'no choice' });
      if (choice.finish_reason === 'content_filter') throw new LlmError('openai', 'refusal', { errorType: 'finish_reason content_filter' });
      if (choice.message.refusal) throw new LlmError('openai', 'refusal', { errorType: 'refusal' });
      if (choice.finish_reason === 'length') throw new LlmError('openai', 'truncated', { errorType: 'finish_reason length' });
      const text = typeof choice.message.content === 'string' ? choice.message.content.trim() : '';
      if (!text) throw new LlmError('openai', 'invalid_response', { note: 'no text' });
      if (typeof completion.model !== 'string' || !completion.model) throw new LlmError('openai', 'invalid_response', { note: 'no model' });
      return {
        text,
        model: completion.model,
        inputTokens: completion.usage?.prompt_tokens ?? null,
        outputTokens: completion.usage?.completion_tokens ?? null,
        parameters,
      };
    },
  };
}
