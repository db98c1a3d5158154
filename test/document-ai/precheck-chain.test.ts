import assert from 'node:assert/strict';
import { LLM_ERROR_POLICY } from '../../activities/llm/errors';
import { buildPrecheckPrompt, ruleBasedPrecheck, runPrecheckChain, validatePrecheckAnswer } from '../../activities/llm/precheck';
import type { LlmSetup } from '../../activities/llm/setup';
import { startLlmStub, type BehaviourKind, type LlmStub, type StubProvider } from '../helpers/llm-stubs';
import { KEYS, stubLlmSetup } from '../soap-summary/support';
import { CHECKLIST, goodAnswer, sopText } from './precheck-support';

const trail = (attempts: { provider: string; outcome: string }[]) => attempts.map((a) => `${a.provider}:${a.outcome}`);

/**
 * The pre-check's provider chain at the wire: the real SDKs against local servers that speak each provider's
 * protocol, with the summary's error table deciding what each failure leads to.
 */
describe('document pre-check through the provider chain', () => {
  let stubs: Record<StubProvider, LlmStub>;
  let llm: LlmSetup;
  before(async () => {
    stubs = {
      anthropic: await startLlmStub('anthropic', { apiKey: KEYS.anthropic }),
      openai: await startLlmStub('openai', { apiKey: KEYS.openai }),
      ollama: await startLlmStub('ollama'),
    };
    llm = stubLlmSetup(stubs);
  });
  after(() => Promise.all(Object.values(stubs).map((s) => s.stop())));
  /** Each test's script reaches only requests holding its own document's marker. */
  const fresh = () => {
    const text = sopText();
    for (const s of Object.values(stubs)) s.focusOn(text.split('\n')[0]);
    return text;
  };

  it('takes the first provider’s findings, with provenance, and sent the checklist and the text', async () => {
    const text = fresh();
    stubs.anthropic.script({ kind: 'healthy', text: '```json\n' + goodAnswer() + '\n```' });
    const result = await runPrecheckChain(llm, text, CHECKLIST);
    assert.equal(result.source, 'anthropic');
    assert.equal(result.aiGenerated, true);
    assert.equal(result.fallbackUsed, false);
    assert.equal(result.model, 'claude-sonnet-4-5');
    assert.equal(result.promptVersion, 'document-precheck/1');
    assert.equal(result.promptHash, buildPrecheckPrompt('x', []).templateHash);
    assert.deepEqual(trail(result.attempts), ['anthropic:succeeded']);
    assert.deepEqual(
      result.findings.map((f) => `${f.itemId}:${f.status}`),
      ['purpose-scope:met', 'records:unclear', 'audit-trail:not_met'],
    );
    assert.equal(result.findings[0].clause, 'ISO/IEC 17025:2017 8.3.2');
    assert.deepEqual(result.dropped, []);
    const sent = JSON.stringify(stubs.anthropic.requestsFor(text.split('\n')[0]).at(-1)!.body);
    assert.ok(sent.includes('21 CFR 11.10(e)') && sent.includes('weigh ten dispenses'));
  });

  it('drops and counts a finding whose quote is not in the text, and one naming no checklist item', async () => {
    const text = fresh();
    const invented = JSON.parse(goodAnswer());
    invented.findings[2] = { itemId: 'audit-trail', status: 'met', evidence: 'All changes are captured in a time-stamped audit trail.', comment: '' };
    invented.findings.push({ itemId: 'made-up', status: 'met', evidence: 'Purpose', comment: '' });
    stubs.anthropic.script({ kind: 'healthy', text: JSON.stringify(invented) });
    const result = await runPrecheckChain(llm, text, CHECKLIST);
    assert.equal(result.source, 'anthropic');
    assert.deepEqual(
      result.findings.map((f) => f.itemId),
      ['purpose-scope', 'records'],
    );
    assert.deepEqual(result.dropped, [
      { itemId: 'audit-trail', reason: 'quote_not_in_text' },
      { itemId: 'made-up', reason: 'unknown_item' },
    ]);
    // Whitespace may be reflowed; anything else must match character for character.
    const reflowed = validatePrecheckAnswer(text, CHECKLIST, {
      findings: [
        { itemId: 'records', status: 'met', evidence: 'kept in the equipment\n log   for five years', comment: '' },
        { itemId: 'purpose-scope', status: 'met', evidence: 'PURPOSE: this procedure', comment: '' },
        { itemId: 'audit-trail', status: 'met', evidence: null, comment: 'met without a quote shows nothing' },
      ],
    });
    assert.deepEqual(
      reflowed.findings.map((f) => f.itemId),
      ['records'],
    );
    assert.equal(reflowed.dropped.length, 2);
  });

  /** Every failure the stubs can produce: the kind it is classified as, and the requests to the failing provider. */
  const ROWS: { behaviour: BehaviourKind; kind: string }[] = [
    { behaviour: 'rate_limited', kind: 'rate_limited' },
    { behaviour: 'overloaded', kind: 'overloaded' },
    { behaviour: 'server_error', kind: 'server_error' },
    { behaviour: 'hang', kind: 'timeout' },
    { behaviour: 'invalid_json', kind: 'invalid_response' },
    { behaviour: 'quota_exhausted', kind: 'quota_exhausted' },
    { behaviour: 'unauthorized', kind: 'auth' },
    { behaviour: 'refusal', kind: 'refusal' },
    { behaviour: 'truncated', kind: 'truncated' },
    { behaviour: 'prompt_truncated', kind: 'prompt_truncated' },
  ];
  for (const { behaviour, kind } of ROWS) {
    const action = LLM_ERROR_POLICY[kind as keyof typeof LLM_ERROR_POLICY].action;
    const tries = action === 'next_provider' ? 1 : 2;
    it(`${kind}: ${action === 'next_provider' ? 'moves on at once' : 'tries the provider again, then moves on'} to the next provider`, async () => {
      const text = fresh();
      const marker = text.split('\n')[0];
      stubs.anthropic.script(...Array<BehaviourKind>(tries).fill(behaviour));
      stubs.openai.script({ kind: 'healthy', text: goodAnswer() });
      const result = await runPrecheckChain(llm, text, CHECKLIST, { sleep: async () => undefined });
      assert.deepEqual(trail(result.attempts), [...Array<string>(tries).fill(`anthropic:${kind}`), 'openai:succeeded']);
      assert.equal(result.source, 'openai');
      assert.equal(result.fallbackUsed, true);
      assert.equal(stubs.anthropic.requestsFor(marker).length, tries);
      if (kind === 'truncated') {
        assert.deepEqual(
          stubs.anthropic.requestsFor(marker).map((r) => (r.body as { max_tokens: number }).max_tokens),
          [1024, 2048],
        );
      }
    });
  }

  it('passes over Ollama when it silently cut the prompt', async () => {
    const text = fresh();
    stubs.ollama.script('prompt_truncated');
    stubs.openai.script({ kind: 'healthy', text: goodAnswer() });
    const result = await runPrecheckChain(llm, text, CHECKLIST, { providers: ['ollama', 'openai'] });
    assert.deepEqual(trail(result.attempts), ['ollama:prompt_truncated', 'openai:succeeded']);
  });

  it('asks the next provider when an answer holds no findings at all', async () => {
    const text = fresh();
    stubs.anthropic.script({ kind: 'healthy', text: 'The document looks compliant to me.' });
    stubs.openai.script({ kind: 'healthy', text: goodAnswer() });
    const result = await runPrecheckChain(llm, text, CHECKLIST);
    assert.deepEqual(trail(result.attempts), ['anthropic:validation_failed', 'openai:succeeded']);
  });

  it('answers with the keyword rules when every provider fails, labelled as not AI-generated', async () => {
    const text = fresh();
    stubs.anthropic.script('unauthorized');
    stubs.openai.script('quota_exhausted');
    stubs.ollama.script('server_error', 'server_error');
    const result = await runPrecheckChain(llm, text, CHECKLIST, { sleep: async () => undefined });
    assert.deepEqual(trail(result.attempts), [
      'anthropic:auth',
      'openai:quota_exhausted',
      'ollama:server_error',
      'ollama:server_error',
      'rule_based:succeeded',
    ]);
    assert.equal(result.source, 'rule_based');
    assert.equal(result.aiGenerated, false);
    assert.equal(result.fallbackUsed, true);
    assert.deepEqual(
      result.findings.map((f) => `${f.itemId}:${f.status}`),
      ['purpose-scope:met', 'records:met', 'audit-trail:unclear'],
    );
    // The rules quote whole lines of the text: their findings pass the same check as a model's.
    assert.deepEqual(validatePrecheckAnswer(text, CHECKLIST, { findings: result.findings }).dropped, []);
    assert.deepEqual(ruleBasedPrecheck(text, CHECKLIST), (await runPrecheckChain(undefined, text, CHECKLIST)).findings);
  });
});
