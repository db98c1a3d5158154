import assert from 'node:assert/strict';
import { createAnthropicProvider } from '../../activities/llm/anthropic';
import { LlmError, type LlmErrorKind } from '../../activities/llm/errors';
import { createOllamaProvider } from '../../activities/llm/ollama';
import { createOpenAIProvider } from '../../activities/llm/openai';
import { buildSummaryPrompt, stripNoteIdentifiers } from '../../activities/llm/prompt';
import type { GenerateOptions, LlmProvider, SummaryPrompt } from '../../activities/llm/types';
import { validateSummary } from '../../activities/llm/validate';
import { startLlmStub, type Behaviour, type LlmStub, type StubProvider } from '../helpers/llm-stubs';
import { SAMPLE_NOTES } from './sample-notes';

const MODELS: Record<StubProvider, string> = { anthropic: 'claude-sonnet-4-6', openai: 'gpt-4.1', ollama: 'llama3.1:8b' };
const OPTIONS: GenerateOptions = { maxTokens: 1024, temperature: 0, timeoutMs: 5_000 };
const prompt: SummaryPrompt = buildSummaryPrompt(SAMPLE_NOTES, { dateOfBirth: '1961-05-02', sex: 'female' });

function adapterFor(stub: LlmStub, numCtx = 16384): LlmProvider {
  if (stub.provider === 'anthropic') return createAnthropicProvider({ apiKey: 'sk-ant-test', baseUrl: stub.url, model: MODELS.anthropic });
  if (stub.provider === 'openai') return createOpenAIProvider({ apiKey: 'sk-test', baseUrl: stub.url, model: MODELS.openai });
  return createOllamaProvider({ host: stub.url, model: MODELS.ollama, numCtx });
}

async function failure(p: Promise<unknown>): Promise<LlmError> {
  try {
    await p;
  } catch (err) {
    assert.ok(err instanceof LlmError, `expected an LlmError, got ${String(err)}`);
    return err;
  }
  assert.fail('the call succeeded');
}

/** Every scripted behaviour, the kind each provider's adapter must report for it. */
const ROWS: { behaviour: Behaviour; kind: LlmErrorKind; only?: StubProvider[]; status?: number }[] = [
  { behaviour: { kind: 'rate_limited', retryAfter: 2 }, kind: 'rate_limited', status: 429 },
  { behaviour: 'overloaded', kind: 'overloaded' },
  { behaviour: 'server_error', kind: 'server_error', status: 500 },
  { behaviour: 'hang', kind: 'timeout' },
  { behaviour: 'refusal', kind: 'refusal' },
  { behaviour: { kind: 'refusal', variant: 'refusal_field' }, kind: 'refusal', only: ['openai'] },
  { behaviour: 'truncated', kind: 'truncated' },
  { behaviour: 'invalid_json', kind: 'invalid_response' },
  { behaviour: 'quota_exhausted', kind: 'quota_exhausted' },
  { behaviour: { kind: 'quota_exhausted', variant: 'billing_error' }, kind: 'quota_exhausted', only: ['anthropic'], status: 402 },
  { behaviour: { kind: 'quota_exhausted', variant: 'spend_limit' }, kind: 'quota_exhausted', only: ['anthropic'], status: 429 },
  { behaviour: 'unauthorized', kind: 'auth', status: 401 },
  { behaviour: 'prompt_truncated', kind: 'prompt_truncated' },
];

for (const provider of ['anthropic', 'openai', 'ollama'] as const) {
  describe(`the ${provider} adapter against a stub that speaks its protocol`, function () {
    let stub: LlmStub;
    let adapter: LlmProvider;

    before(async () => {
      stub = await startLlmStub(provider);
      adapter = adapterFor(stub);
    });
    after(() => stub.stop());
    beforeEach(() => {
      stub.requests.length = 0;
      stub.setDefault('healthy');
    });

    it('returns a complete summary with the exact model string the provider reported', async () => {
      const generation = await adapter.generate(prompt, OPTIONS);
      const reported = provider === 'openai' ? 'gpt-4.1-2025-04-14' : MODELS[provider];
      assert.equal(generation.model, reported);
      assert.ok(generation.inputTokens && generation.inputTokens > 0);
      assert.ok(generation.outputTokens && generation.outputTokens > 0);
      assert.equal(generation.parameters.model, MODELS[provider]);
      assert.equal(validateSummary(SAMPLE_NOTES, generation.text, { maxChars: 20_000 }).ok, true);
      assert.equal(stub.count, 1);
    });

    for (const row of ROWS.filter((r) => !r.only || r.only.includes(provider))) {
      const name =
        typeof row.behaviour === 'string'
          ? row.behaviour
          : `${row.behaviour.kind}${row.behaviour.variant ? ` (${row.behaviour.variant})` : ''}`;
      it(`reports ${name} as ${row.kind}, after a single request`, async () => {
        stub.script(row.behaviour);
        const err = await failure(adapter.generate(prompt, { ...OPTIONS, timeoutMs: row.kind === 'timeout' ? 300 : OPTIONS.timeoutMs }));
        assert.equal(err.kind, row.kind);
        assert.equal(err.provider, provider);
        if (row.status !== undefined) assert.equal(err.httpStatus, row.status);
        assert.equal(stub.count, 1, 'the SDK must not retry on its own');
      });
    }

    it('reads the wait from Retry-After in seconds and from retry-after-ms', async () => {
      stub.script({ kind: 'rate_limited', retryAfter: 7 });
      assert.equal((await failure(adapter.generate(prompt, OPTIONS))).retryAfterMs, 7000);
      stub.script({ kind: 'rate_limited', retryAfter: 7, retryAfterMs: 1500 });
      assert.equal((await failure(adapter.generate(prompt, OPTIONS))).retryAfterMs, 1500);
    });

    it('keeps the provider error text out of the error message, since it can echo the prompt', async () => {
      stub.script('quota_exhausted');
      const err = await failure(adapter.generate(prompt, OPTIONS));
      assert.doesNotMatch(err.message, /credit|quota, please|usage limit|billing details/i);
      assert.match(err.message, new RegExp(`^${provider}: quota_exhausted`));
    });

    it('reports an aborted call as cancelled', async () => {
      stub.script('hang');
      const controller = new AbortController();
      const pending = adapter.generate(prompt, { ...OPTIONS, signal: controller.signal });
      setTimeout(() => controller.abort(), 100);
      assert.equal((await failure(pending)).kind, 'cancelled');
    });

    it('sends the prompt as given, with the stripped identifiers nowhere in the body', async () => {
      const ids = {
        mrn: 'MRN-448812',
        phone: '(555) 201-7733',
        givenName: 'Rosalind',
        familyName: 'Okafor',
        address: '14 Larch Lane, Springfield',
      };
      const notes = SAMPLE_NOTES.map((n, i) =>
        i === 0 ? { ...n, subjective: `${n.subjective} Rosalind Okafor (MRN-448812) lives at 14 Larch Lane; call 555-201-7733.` } : n,
      );
      const stripped = buildSummaryPrompt(
        notes.map((n) => stripNoteIdentifiers(n, ids)),
        { dateOfBirth: '1961-05-02' },
      );
      await adapter.generate(stripped, OPTIONS);
      const sent = stub.requests[0].rawBody;
      for (const leaked of ['448812', 'Rosalind', 'Okafor', 'Larch', '201-7733', '1961'])
        assert.ok(!sent.includes(leaked), `${leaked} was sent`);
      assert.ok(sent.includes('[name]') && sent.includes('[phone]'));
    });

    it('fails as server_error when nothing listens', async () => {
      const gone = await startLlmStub(provider);
      const orphan = adapterFor(gone);
      await gone.stop();
      const err = await failure(orphan.generate(prompt, OPTIONS));
      assert.equal(err.kind, 'server_error');
    });
  });
}

describe('the ollama adapter and the context window', function () {
  let stub: LlmStub;
  before(async () => {
    stub = await startLlmStub('ollama');
  });
  after(() => stub.stop());
  beforeEach(() => {
    stub.requests.length = 0;
  });

  it('always asks for num_ctx, the token budget and no streaming', async () => {
    await createOllamaProvider({ host: stub.url, model: 'llama3.1:8b', numCtx: 12288 }).generate(prompt, OPTIONS);
    const body = stub.requests[0].body as { stream: boolean; options: Record<string, number>; truncate: boolean };
    assert.equal(body.stream, false);
    assert.equal(body.options.num_ctx, 12288);
    assert.equal(body.options.num_predict, OPTIONS.maxTokens);
    assert.equal(body.truncate, false);
  });

  it('refuses a prompt that cannot fit num_ctx without sending it', async () => {
    const err = await failure(createOllamaProvider({ host: stub.url, model: 'llama3.1:8b', numCtx: 2048 }).generate(prompt, OPTIONS));
    assert.equal(err.kind, 'prompt_truncated');
    assert.equal(stub.count, 0);
  });

  it('spots a prompt the server cut silently from prompt_eval_count', async () => {
    stub.script('prompt_truncated');
    const err = await failure(createOllamaProvider({ host: stub.url, model: 'llama3.1:8b', numCtx: 16384 }).generate(prompt, OPTIONS));
    assert.equal(err.kind, 'prompt_truncated');
    assert.equal(stub.count, 1);
  });
});
