import Anthropic from '@anthropic-ai/sdk';
import { classifyLlmError, LlmError } from './errors';
import type { GenerateOptions, Generation, LlmProvider, SummaryPrompt } from './types';

export interface AnthropicProviderOptions {
  apiKey: string;
  /** Without it, the SDK's default (https://api.anthropic.com). */
  baseUrl?: string;
  model: string;
}

/** Claude through the Messages API, non-streaming, with the SDK's own retries off: Temporal retries. */
export function createAnthropicProvider(opts: AnthropicProviderOptions): LlmProvider {
  // The SDK's debug log carries request and response bodies (PHI); failures reach us as exceptions instead.
  const client = new Anthropic({ apiKey: opts.apiKey, authToken: null, baseURL: opts.baseUrl ?? null, maxRetries: 0, logLevel: 'off' });
  return {
    name: 'anthropic',
    model: opts.model,
    async generate(prompt: SummaryPrompt, options: GenerateOptions): Promise<Generation> {
      const parameters = { model: opts.model, max_tokens: options.maxTokens, temperature: options.temperature };
      let message: Anthropic.Message;
      try {
        message = await client.messages.create(
          { ...parameters, system: prompt.system, messages: [{ role: 'user', content: prompt.user }] },
          { timeout: options.timeoutMs, signal: options.signal, maxRetries: 0 },
        );
      } catch (err) {
        throw classifyLlmError('anthropic', err);
      }
      if (!message || typeof message !== 'object' || !Array.isArray(message.content)) {
        throw new LlmError('anthropic', 'invalid_response', { note: 'no content' });
      }
      if (message.stop_reason === 'refusal') throw new LlmError('anthropic', 'refusal', { errorType: 'stop_reason refusal' });
      if (message.stop_reason === 'max_tokens' || message.stop_reason === 'model_context_window_exceeded') {
        throw new LlmError('anthropic', 'truncated', { errorType: `stop_reason ${message.stop_reason}` });
      }
      const text = message.content
        .flatMap((block) => (block.type === 'text' && typeof block.text === 'string' ? [block.text] : []))
        .join('')
        .trim();
      if (!text) throw new LlmError('anthropic', 'invalid_response', { note: 'no text' });
      if (typeof message.model !== 'string' || !message.model) throw new LlmError('anthropic', 'invalid_response', { note: 'no model' });
      return {
        text,
        model: message.model,
        inputTokens: message.usage?.input_tokens ?? null,
        outputTokens: message.usage?.output_tokens ?? null,
        parameters,
      };
    },
  };
}
