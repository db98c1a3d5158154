import { randomBytes } from 'node:crypto';
import { createServer, type IncomingHttpHeaders, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { composeSoapSummary } from '../../activities/llm/extractive';
import { notesFromPrompt } from '../../activities/llm/prompt';

/**
 * Local servers that speak each LLM provider's HTTP protocol closely enough for the real SDKs: Anthropic
 * `POST /v1/messages`, OpenAI `POST /v1/chat/completions`, Ollama `POST /api/chat` (non-streaming), each with the
 * provider's own success and error shapes and headers. Behaviours are scripted per request (a queue, then a
 * default), every request is recorded, and a fixed latency can be set for benchmarks. Used by tests and benches.
 */
export type StubProvider = 'anthropic' | 'openai' | 'ollama';

export type BehaviourKind =
  | 'healthy'
  | 'rate_limited'
  | 'overloaded'
  | 'server_error'
  | 'hang'
  | 'refusal'
  | 'truncated'
  | 'invalid_json'
  | 'quota_exhausted'
  | 'unauthorized'
  | 'prompt_truncated';

export interface BehaviourSpec {
  kind: BehaviourKind;
  /** rate_limited / overloaded: the Retry-After header, in seconds. */
  retryAfter?: number;
  /** rate_limited / overloaded: the retry-after-ms header. */
  retryAfterMs?: number;
  /** healthy: this answer instead of one built from the notes in the prompt. */
  text?: string;
  /** Overrides the stub's latency for this request. */
  latencyMs?: number;
  /**
   * Alternative real shapes: OpenAI refusal `'refusal_field'` (a `refusal` with finish_reason stop); Anthropic
   * quota `'billing_error'` (402) or `'spend_limit'` (429 with an error_code).
   */
  variant?: 'refusal_field' | 'billing_error' | 'spend_limit';
}
export type Behaviour = BehaviourKind | BehaviourSpec;

export interface RecordedRequest {
  method: string;
  path: string;
  headers: IncomingHttpHeaders;
  /** Parsed JSON, or undefined when the body was not JSON. */
  body: unknown;
  rawBody: string;
  at: number;
}

export interface LlmStubOptions {
  /** The model string answers report; default: the one asked for (OpenAI: with a dated snapshot suffix). */
  model?: string;
  /** Fixed delay before every answer. */
  latencyMs?: number;
  /** What requests get once the script is used up; default healthy. */
  defaultBehaviour?: Behaviour;
  /** When set, requests without this key are answered 401 like the real API. */
  apiKey?: string;
}

const spec = (b: Behaviour): BehaviourSpec => (typeof b === 'string' ? { kind: b } : b);
const id = (prefix: string) => `${prefix}${randomBytes(12).toString('hex')}`;
const tokens = (text: string) => Math.max(1, Math.ceil(text.length / 4));

interface Exchange {
  body: Record<string, unknown>;
  promptText: string;
  userText: string;
  requestedModel: string;
}

function textOf(content: unknown): string {
  if (typeof content === 'string') return content;
  if (Array.isArray(content)) return content.map((b) => (b && typeof b === 'object' && 'text' in b ? String(b.text) : '')).join('');
  return '';
}

/** A good summary of the notes in the prompt: the seven headings, every medication, allergy and problem. */
export function healthySummary(userText: string): string {
  const notes = notesFromPrompt(userText);
  if (notes.length === 0) return '## Subjective\n- None.\n\n## Objective\n- None.\n\n## Assessment\n- None.\n\n## Plan\n- None.';
  return composeSoapSummary(notes);
}

export class LlmStub {
  readonly requests: RecordedRequest[] = [];
  private readonly queue: BehaviourSpec[] = [];
  private server?: Server;
  private readonly timers = new Set<NodeJS.Timeout>();
  private defaultBehaviour: BehaviourSpec;
  private focus?: string;
  latencyMs: number;
  port = 0;

  constructor(
    readonly provider: StubProvider,
    private readonly opts: LlmStubOptions = {},
  ) {
    this.defaultBehaviour = spec(opts.defaultBehaviour ?? 'healthy');
    this.latencyMs = opts.latencyMs ?? 0;
  }

  /** The base URL to give the SDK (OpenAI's includes /v1, as its SDK expects). */
  get url(): string {
    return `http://127.0.0.1:${this.port}${this.provider === 'openai' ? '/v1' : ''}`;
  }

  get count(): number {
    return this.requests.length;
  }

  /** Behaviours for the next requests, one each, in order. */
  script(...behaviours: Behaviour[]): this {
    this.queue.push(...behaviours.map(spec));
    return this;
  }

  /**
   * From now on only requests whose prompt holds this text take scripted behaviours; any other request (a late one
   * from an earlier job, e.g. an activity attempt Temporal already timed out) gets the default. Drops what is left of
   * the script, so one test's leftovers never reach the next.
   */
  focusOn(text: string): this {
    this.focus = text;
    this.queue.length = 0;
    return this;
  }

  /** The recorded requests whose prompt holds this text. */
  requestsFor(text: string): RecordedRequest[] {
    return this.requests.filter((r) => r.rawBody.includes(text));
  }

  setDefault(behaviour: Behaviour): this {
    this.defaultBehaviour = spec(behaviour);
    return this;
  }

  async start(): Promise<this> {
    this.server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => this.handle(req, res, Buffer.concat(chunks).toString('utf8')));
    });
    await new Promise<void>((resolve) => this.server!.listen(0, '127.0.0.1', () => resolve()));
    this.port = (this.server.address() as AddressInfo).port;
    return this;
  }

  /** Closes at once, hanging requests included. */
  async stop(): Promise<void> {
    for (const t of this.timers) clearTimeout(t);
    this.timers.clear();
    if (!this.server) return;
    const server = this.server;
    this.server = undefined;
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }

  private later(ms: number, fn: () => void): void {
    if (ms <= 0) return fn();
    const t = setTimeout(() => {
      this.timers.delete(t);
      fn();
    }, ms);
    this.timers.add(t);
  }

  private handle(req: IncomingMessage, res: ServerResponse, raw: string): void {
    let body: unknown;
    try {
      body = JSON.parse(raw);
    } catch {
      body = undefined;
    }
    const path = (req.url ?? '/').split('?')[0];
    this.requests.push({ method: req.method ?? 'GET', path, headers: req.headers, body, rawBody: raw, at: Date.now() });

    const expected = { anthropic: '/v1/messages', openai: '/v1/chat/completions', ollama: '/api/chat' }[this.provider];
    if (req.method !== 'POST' || path !== expected) return this.error(res, 404, 'not_found_error', `${req.method} ${path} not found`);
    if (!body || typeof body !== 'object') return this.error(res, 400, 'invalid_request_error', 'the body is not JSON');
    if (this.opts.apiKey && !this.keyMatches(req.headers)) return this.unauthorized(res);

    const scripted = this.focus === undefined || raw.includes(this.focus);
    const b = (scripted ? this.queue.shift() : undefined) ?? this.defaultBehaviour;
    if (b.kind === 'hang') return; // The socket stays open until the client gives up or the stub stops.
    this.later(b.latencyMs ?? this.latencyMs, () => {
      if (res.destroyed || res.writableEnded) return;
      this.answer(res, b, this.exchange(body as Record<string, unknown>));
    });
  }

  private keyMatches(headers: IncomingHttpHeaders): boolean {
    // Anthropic takes its key as x-api-key or, as its current SDK sends it, as a bearer token.
    if (this.provider === 'anthropic' && headers['x-api-key'] === this.opts.apiKey) return true;
    return headers.authorization === `Bearer ${this.opts.apiKey}`;
  }

  private exchange(body: Record<string, unknown>): Exchange {
    const messages = Array.isArray(body.messages) ? (body.messages as { role: string; content: unknown }[]) : [];
    const userText = messages
      .filter((m) => m.role === 'user')
      .map((m) => textOf(m.content))
      .join('\n');
    const systemText =
      textOf(body.system) +
      messages
        .filter((m) => m.role === 'system')
        .map((m) => textOf(m.content))
        .join('\n');
    return { body, userText, promptText: systemText + userText, requestedModel: String(body.model ?? 'unknown') };
  }

  private reportedModel(requested: string): string {
    if (this.opts.model) return this.opts.model;
    return this.provider === 'openai' && !/-\d{4}-\d{2}-\d{2}$/.test(requested) ? `${requested}-2025-04-14` : requested;
  }

  private send(res: ServerResponse, status: number, payload: unknown, headers: Record<string, string> = {}): void {
    const requestId =
      this.provider === 'anthropic' ? { 'request-id': id('req_') } : this.provider === 'openai' ? { 'x-request-id': id('req_') } : {};
    res.writeHead(status, { 'content-type': 'application/json', ...requestId, ...headers });
    res.end(typeof payload === 'string' ? payload : JSON.stringify(payload));
  }

  /** Each provider's own error body. */
  private error(
    res: ServerResponse,
    status: number,
    type: string,
    message = type,
    extra: { code?: string | null; headers?: Record<string, string>; details?: unknown } = {},
  ): void {
    if (this.provider === 'anthropic') {
      this.send(
        res,
        status,
        { type: 'error', error: { type, message, ...(extra.details ? { details: extra.details } : {}) }, request_id: id('req_') },
        extra.headers,
      );
    } else if (this.provider === 'openai') {
      this.send(res, status, { error: { message, type, param: null, code: extra.code ?? null } }, extra.headers);
    } else {
      this.send(res, status, { error: message }, extra.headers);
    }
  }

  private answer(res: ServerResponse, b: BehaviourSpec, x: Exchange): void {
    const p = this.provider;
    const retryHeaders: Record<string, string> = {};
    if (b.retryAfter !== undefined) retryHeaders['retry-after'] = String(b.retryAfter);
    if (b.retryAfterMs !== undefined) retryHeaders['retry-after-ms'] = String(b.retryAfterMs);
    switch (b.kind) {
      case 'healthy':
        return this.success(res, x, b.text ?? healthySummary(x.userText), 'complete');
      case 'truncated': {
        const full = b.text ?? healthySummary(x.userText);
        return this.success(res, x, full.slice(0, Math.max(20, Math.floor(full.length / 3))), 'truncated');
      }
      case 'refusal':
        if (p === 'ollama') return this.success(res, x, "I'm sorry, but I can't help with that request.", 'complete');
        return this.success(res, x, '', b.variant === 'refusal_field' ? 'refusal_field' : 'refusal');
      case 'prompt_truncated':
        if (p === 'anthropic') return this.error(res, 400, 'invalid_request_error', 'prompt is too long: 214117 tokens > 200000 maximum');
        if (p === 'openai') {
          return this.error(
            res,
            400,
            'invalid_request_error',
            "This model's maximum context length is 128000 tokens. However, your messages resulted in 131072 tokens.",
            {
              code: 'context_length_exceeded',
            },
          );
        }
        // Ollama answers 200 after silently keeping only part of the prompt.
        return this.success(res, x, healthySummary(x.userText), 'complete', Math.max(1, Math.floor(x.promptText.length / 40)));
      case 'invalid_json':
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(
          p === 'ollama' ? '{"model":"llama3.1:8b","message":{"role":"assist' : '{"id":"msg_01","type":"message","content":[{"type":"te',
        );
        return;
      case 'rate_limited':
        if (p === 'anthropic') {
          return this.error(
            res,
            429,
            'rate_limit_error',
            'This request would exceed the rate limit for your organization of 50 requests per minute.',
            { headers: retryHeaders },
          );
        }
        if (p === 'openai') {
          return this.error(
            res,
            429,
            'requests',
            `Rate limit reached for ${x.requestedModel} on requests per min (RPM): Limit 500, Used 500, Requested 1.`,
            {
              code: 'rate_limit_exceeded',
              headers: retryHeaders,
            },
          );
        }
        return this.error(res, 429, 'rate', 'too many requests', { headers: retryHeaders });
      case 'overloaded':
        if (p === 'anthropic') return this.error(res, 529, 'overloaded_error', 'Overloaded', { headers: retryHeaders });
        if (p === 'openai')
          return this.error(res, 503, 'server_error', 'The server is overloaded or not ready yet.', { headers: retryHeaders });
        return this.error(res, 503, 'busy', 'server busy, please try again.  maximum pending requests exceeded', { headers: retryHeaders });
      case 'server_error':
        if (p === 'anthropic') return this.error(res, 500, 'api_error', 'Internal server error');
        if (p === 'openai')
          return this.error(res, 500, 'server_error', 'The server had an error while processing your request. Sorry about that!');
        return this.error(res, 500, 'runner', 'llama runner process has terminated: exit status 2');
      case 'quota_exhausted':
        if (p === 'anthropic') {
          if (b.variant === 'billing_error') return this.error(res, 402, 'billing_error', 'Your account has an outstanding balance.');
          if (b.variant === 'spend_limit') {
            return this.error(res, 429, 'rate_limit_error', 'Your organization has reached its monthly spend limit.', {
              details: { error_code: 'enforced_spend_limit_reached' },
            });
          }
          return this.error(
            res,
            400,
            'invalid_request_error',
            'Your credit balance is too low to access the Anthropic API. Please go to Plans & Billing to upgrade or purchase credits.',
          );
        }
        if (p === 'openai') {
          return this.error(
            res,
            429,
            'insufficient_quota',
            'You exceeded your current quota, please check your plan and billing details. For more information on this error, read the docs: https://platform.openai.com/docs/guides/error-codes/api-errors.',
            { code: 'insufficient_quota' },
          );
        }
        return this.error(
          res,
          429,
          'quota',
          'you (labflow) have reached your weekly usage limit, upgrade for higher limits: https://ollama.com/upgrade',
        );
      case 'unauthorized':
        return this.unauthorized(res);
    }
  }

  private unauthorized(res: ServerResponse): void {
    if (this.provider === 'anthropic') return this.error(res, 401, 'authentication_error', 'invalid x-api-key');
    if (this.provider === 'openai') {
      return this.error(
        res,
        401,
        'invalid_request_error',
        'Incorrect API key provided: sk-stub***. You can find your API key at https://platform.openai.com/account/api-keys.',
        {
          code: 'invalid_api_key',
        },
      );
    }
    return this.error(res, 401, 'unauthorized', 'unauthorized');
  }

  private success(
    res: ServerResponse,
    x: Exchange,
    text: string,
    end: 'complete' | 'truncated' | 'refusal' | 'refusal_field',
    promptEval?: number,
  ): void {
    const model = this.reportedModel(x.requestedModel);
    const input = tokens(x.promptText);
    const output = tokens(text);
    if (this.provider === 'anthropic') {
      const stop = end === 'truncated' ? 'max_tokens' : end === 'complete' ? 'end_turn' : 'refusal';
      return this.send(res, 200, {
        id: id('msg_'),
        type: 'message',
        role: 'assistant',
        model,
        content: text ? [{ type: 'text', text }] : [],
        stop_reason: stop,
        stop_sequence: null,
        stop_details: stop === 'refusal' ? { type: 'refusal', category: null, explanation: null } : null,
        usage: { input_tokens: input, output_tokens: output, cache_creation_input_tokens: 0, cache_read_input_tokens: 0 },
      });
    }
    if (this.provider === 'openai') {
      const finish = end === 'truncated' ? 'length' : end === 'refusal' ? 'content_filter' : 'stop';
      return this.send(res, 200, {
        id: id('chatcmpl-'),
        object: 'chat.completion',
        created: Math.floor(Date.now() / 1000),
        model,
        choices: [
          {
            index: 0,
            message: {
              role: 'assistant',
              content: end === 'refusal' || end === 'refusal_field' ? null : text,
              refusal: end === 'refusal_field' ? "I'm sorry, I can't assist with that." : null,
              annotations: [],
            },
            logprobs: null,
            finish_reason: finish,
          },
        ],
        usage: { prompt_tokens: input, completion_tokens: output, total_tokens: input + output },
        system_fingerprint: 'fp_stub',
      });
    }
    const numCtx = Number((x.body.options as { num_ctx?: number } | undefined)?.num_ctx ?? 2048);
    return this.send(res, 200, {
      model,
      created_at: new Date().toISOString(),
      message: { role: 'assistant', content: text },
      done: true,
      done_reason: end === 'truncated' ? 'length' : 'stop',
      total_duration: 1_000_000,
      load_duration: 100_000,
      prompt_eval_count: promptEval ?? Math.min(input, numCtx),
      prompt_eval_duration: 200_000,
      eval_count: output,
      eval_duration: 700_000,
    });
  }
}

export async function startLlmStub(provider: StubProvider, opts: LlmStubOptions = {}): Promise<LlmStub> {
  return new LlmStub(provider, opts).start();
}
