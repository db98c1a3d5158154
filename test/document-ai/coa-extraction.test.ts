import assert from 'node:assert/strict';
import { coaTextFromPrompt, proposeCoaFields, ruleBasedCoa, validateCoaProposal } from '../../activities/llm/coa';
import type { LlmSetup } from '../../activities/llm/setup';
import type { LlmStub, StubProvider } from '../helpers/llm-stubs';
import { startLlmStubs, stubLlmSetup } from '../soap-summary/support';
import { certificate, goodAnswer as good } from './support';

describe('certificate-of-analysis extraction through the provider chain', () => {
  let stubs: Record<StubProvider, LlmStub>;
  let llm: LlmSetup;
  before(async () => {
    stubs = await startLlmStubs();
    llm = stubLlmSetup(stubs);
  });
  after(() => Promise.all(Object.values(stubs).map((s) => s.stop())));

  it('accepts a valid proposal from the first provider, with its provenance, and sent the certificate in the prompt', async () => {
    const text = certificate();
    stubs.anthropic.script({ kind: 'healthy', text: '```json\n' + good(text) + '\n```' });
    const proposal = await proposeCoaFields(llm, text);
    assert.equal(proposal.source, 'anthropic');
    assert.equal(proposal.aiGenerated, true);
    assert.equal(proposal.model, 'claude-sonnet-4-5');
    assert.equal(proposal.promptVersion, 'coa-extraction/1');
    assert.match(proposal.promptHash, /^[0-9a-f]{64}$/);
    assert.deepEqual(proposal.validation.issues, []);
    assert.equal(proposal.validation.accepted.lotNumber, /Lot No\.: (\S+)/.exec(text)![1]);
    assert.equal(proposal.validation.accepted.parameters?.length, 3);
    assert.deepEqual(
      proposal.attempts.map((a) => `${a.provider}:${a.outcome}`),
      ['anthropic:succeeded'],
    );
    const sent = stubs.anthropic.requests.at(-1)!;
    const user = (sent.body as { messages: { content: string }[] }).messages[0].content;
    assert.equal(coaTextFromPrompt(user), text);
  });

  it('refuses a proposal whose value is not in the certificate, keeps the reasons, and takes the next provider', async () => {
    const text = certificate();
    const invented = JSON.parse(good(text));
    invented.expiryDate = '2029-12-31';
    invented.parameters[0].result = 99.7; // a number where the certificate's text is expected
    delete invented.supplier;
    stubs.anthropic.script({ kind: 'healthy', text: JSON.stringify(invented) });
    stubs.openai.script({ kind: 'healthy', text: good(text) });
    const proposal = await proposeCoaFields(llm, text);
    const [first, second] = proposal.attempts;
    assert.equal(first.outcome, 'validation_failed');
    assert.deepEqual(first.issues, [
      { field: 'supplier', code: 'missing_field' },
      { field: 'expiryDate', code: 'not_in_source' },
      { field: 'parameters[0].result', code: 'wrong_type' },
    ]);
    assert.equal(second.provider, 'openai');
    assert.equal(second.outcome, 'succeeded');
    assert.equal(proposal.source, 'openai');

    // The validator alone: refused values are never among the accepted ones.
    const verdict = validateCoaProposal(text, invented);
    assert.equal(verdict.ok, false);
    assert.equal(verdict.accepted.expiryDate, undefined);
    assert.equal(verdict.accepted.supplier, undefined);
    assert.deepEqual(
      verdict.accepted.parameters?.map((p) => p.name),
      ['pH (5 % solution)', 'Loss on drying'],
    );
  });

  it('falls back to the rule-based extractor when every provider fails, labelled as not AI-generated', async () => {
    const text = certificate();
    stubs.anthropic.script('unauthorized');
    stubs.openai.script('quota_exhausted');
    stubs.ollama.script('server_error');
    const proposal = await proposeCoaFields(llm, text);
    assert.deepEqual(
      proposal.attempts.map((a) => `${a.provider}:${a.outcome}`),
      ['anthropic:auth', 'openai:quota_exhausted', 'ollama:server_error', 'rule_based:succeeded'],
    );
    assert.equal(proposal.source, 'rule_based');
    assert.equal(proposal.aiGenerated, false);
    assert.deepEqual(proposal.validation.issues, []);
    assert.deepEqual(proposal.validation.accepted, JSON.parse(good(text)));
  });

  it('extracts with rules only when no provider is configured (no key)', async () => {
    const text = certificate('24-0317');
    const proposal = await proposeCoaFields(undefined, text);
    assert.equal(proposal.source, 'rule_based');
    assert.equal(proposal.validation.accepted.lotNumber, '24-0317');
    // A certificate without an expiry line: the field is named as missing, the rest still proposed.
    const partial = ruleBasedCoa(text.replace(/Expiry Date.*\n/, ''));
    const verdict = validateCoaProposal(text, partial);
    assert.deepEqual(verdict.issues, [{ field: 'expiryDate', code: 'missing_field' }]);
    assert.equal(verdict.accepted.supplier, 'Acme Reagents GmbH');
  });

  it('answers not_json for an answer that is not an object', () => {
    assert.deepEqual(validateCoaProposal('x', 'I cannot help with that').issues, [{ field: '$', code: 'not_json' }]);
  });
});
