import { Ollama, type ChatRequest, type ChatResponse } from 'ollama';
import { classifyLlmError, LlmError, retryAfterMs } from './errors';
import type { GenerateOptions, Generation, LlmProvider, SummaryPrompt } from './types';

export interface OllamaProviderOptions {
  /** e.g. http://127.0.0.1:11434 */
  host: string;
  model: string;
  /** Context window asked for on every call; Ollama's own default is small and it truncates silently. */
  numCtx: number;
}

/** Chat-template tokens around the two messages. */
const TEMPLATE_OVERHEAD_TOKENS = 32;

/**
 * A deliberately high estimate: clinical text (numbers, units, abbreviations) runs near 2.5 characters a token, so
 * a prompt that fits by this count fits by the model's tokenizer too.
 */
export function estimatePromptTokens(prompt: SummaryPrompt): number {
  return Math.ceil((prompt.system.length + prompt.user.length) / 2.5) + TEMPLATE_OVERHEAD_TOKENS;
}

/** No tokenizer packs more than about six characters of this text into one token: fewer means part was dropped. */
export function minPlausiblePromptTokens(prompt: SummaryPrompt): number {
  return Math.floor((prompt.system.length + prompt.user.length) / 6);
}

// Local models have no refusal signal of their own; a short apology without any section heading is one.
const APOLOGY = /^\s*(I'?m sorry|I am sorry|I can(?:no|')t|I am unable|I'?m unable|I won'?t|As an AI)\b/i;
const ANY_HEADING = /^\s*(#{1,6}\s*|\*\*)?\s*(subjective|objective|assessment|plan)\b/im;

/**
 * Ollama's native /api/chat, non-streaming. The SDK has no retries, and passes no AbortSignal on non-streaming
 * calls, so the request's fetch carries the caller's signal and the client timeout itself.
 */
export function createOllamaProvider(opts: OllamaProviderOptions): LlmProvider {
  return {
    name: 'ollama',
    model: opts.model,
    async generate(prompt: SummaryPrompt, options: GenerateOptions): Promise<Generation> {
      const estimated = estimatePromptTokens(prompt);
      if (estimated + options.maxTokens > opts.numCtx) {
        throw new LlmError('ollama', 'prompt_truncated', { note: `about ${estimated} prompt tokens do not fit num_ctx ${opts.numCtx}` });
      }
      const parameters = { model: opts.model, num_ctx: opts.numCtx, num_predict: options.maxTokens, temperature: options.temperature };
      const timeout = AbortSignal.timeout(options.timeoutMs);
      const signal = options.signal ? AbortSignal.any([timeout, options.signal]) : timeout;
      const seen: { retryAfterMs?: number } = {};
      const client = new Ollama({
        host: opts.host,
        fetch: async (input: Parameters<typeof fetch>[0], init?: Parameters<typeof fetch>[1]) => {
          const response = await fetch(input, { ...init, signal });
          if (!response.ok) seen.retryAfterMs = retryAfterMs(response.headers);
          return response;
        },
      });
      // `truncate: false` makes servers that know it answer 400 instead of cutting the prompt; others ignore it.
      const request: ChatRequest & { stream: false; truncate: boolean } = {
        model: opts.model,
        stream: false,
        truncate: false,
        messages: [
          { role: 'system', content: prompt.system },
          { role: 'user', content: prompt.user },
        ],
        options: { num_ctx: opts.numCtx, num_predict: options.maxTokens, temperature: options.temperature },
      };
      let response: ChatResponse;
      try {
        response = await client.chat(request);
      } catch (err) {
        if (timeout.aborted) throw new LlmError('ollama', 'timeout', { note: 'client timeout' });
        if (options.signal?.aborted) throw new LlmError('ollama', 'cancelled');
        throw classifyLlmError('ollama', err, seen);
      }
      if (!response || typeof response !== 'object' || !response.message)
        throw new LlmError('ollama', 'invalid_response', { note: 'no message' });
      if (response.done_reason === 'length') throw new LlmError('ollama', 'truncated', { errorType: 'done_reason length' });
      if (response.done === false) throw new LlmError('ollama', 'invalid_response', { note: 'not done' });
      const evaluated = response.prompt_eval_count;
      if (typeof evaluated === 'number' && evaluated > 0) {
        if (evaluated < minPlausiblePromptTokens(prompt) || evaluated >= opts.numCtx) {
          throw new LlmError('ollama', 'prompt_truncated', { note: `prompt_eval_count ${evaluated} for about ${estimated} prompt tokens` });
        }
      }
      const text = typeof response.message.content === 'string' ? response.message.content.trim() : '';
      if (!text) throw new LlmError('ollama', 'invalid_response', { note: 'no text' });
      if (APOLOGY.test(text) && !ANY_HEADING.test(text))
        throw new LlmError('ollama', 'refusal', { errorType: 'apology without a summary' });
      if (typeof response.model !== 'string' || !response.model) throw new LlmError('ollama', 'invalid_response', { note: 'no model' });
      return {
        text,
        model: response.model,
        inputTokens: typeof evaluated === 'number' ? evaluated : null,
        outputTokens: typeof response.eval_count === 'number' ? response.eval_count : null,
        parameters,
      };
    },
  };
}
