/**
 * Captures the coa-extraction run's replay fixture into test/fixtures/histories/coa-extraction/. Run with
 * `npx mocha test/document-ai/capture-histories.ts`; it proposes with every provider failing (the rule-based
 * fallback) and confirms with a correction.
 */
import assert from 'node:assert/strict';
import './precheck-capture-histories';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { fetchFixture, saveFixture } from '../../workers/replay';
import { historiesDir } from '../helpers/replay-suite';
import { makeUsers } from '../helpers/users';
import { waitFor } from '../helpers/wait';
import { testEnv } from '../setup/env';
import { startSummaryRig, type SummaryRig } from '../soap-summary/support';
import { certificate, goodAnswer } from './support';

describe('capture coa-extraction histories', () => {
  let rig: SummaryRig;
  before(async () => {
    rig = await startSummaryRig();
  });
  after(() => rig.stop());

  it('a rule-based proposal confirmed with a correction', async () => {
    const { qa } = await makeUsers({ qa: ['qa_manager'] });
    rig.stubs.anthropic.script('unauthorized');
    rig.stubs.openai.script('quota_exhausted');
    rig.stubs.ollama.script('server_error', 'server_error');
    const res = await rig.p.api('POST', '/api/v1/coa-extractions', { key: qa.apiKey, body: { text: certificate() } });
    assert.equal(res.status, 202, JSON.stringify(res.body));
    const view = await waitFor(
      async () => {
        const r = await rig.p.api('GET', `/api/v1/coa-extractions/${res.body.id}`, { key: qa.apiKey });
        return r.body.stage === 'proposed' ? r.body : undefined;
      },
      'proposed',
      60_000,
      150,
    );
    const fields = { ...view.proposal, parameters: view.proposal.parameters.slice(0, 1) };
    const done = await rig.p.api('POST', `/api/v1/coa-extractions/${res.body.id}/confirm`, { key: qa.apiKey, body: { fields } });
    assert.equal(done.status, 200, JSON.stringify(done.body));
    await testEnv().client.workflow.getHandle(res.body.workflowId).result();
    const dir = historiesDir('coa-extraction');
    mkdirSync(dir, { recursive: true });
    await saveFixture(join(dir, 'rule-based-confirmed-with-correction.json'), await fetchFixture(testEnv().client, res.body.workflowId));
  });

  it("each provider its own activity (patched 'coa-provider-attempts'): a retry, a larger budget after truncation, then rejected", async () => {
    const { qa } = await makeUsers({ qa: ['qa_manager'] });
    const text = certificate();
    for (const stub of Object.values(rig.stubs)) stub.focusOn(/Lot No\.: (\S+)/.exec(text)![1]);
    rig.stubs.anthropic.script('server_error', 'unauthorized');
    rig.stubs.openai.script('truncated', { kind: 'healthy', text: goodAnswer(text) });
    const res = await rig.p.api('POST', '/api/v1/coa-extractions', { key: qa.apiKey, body: { text } });
    assert.equal(res.status, 202, JSON.stringify(res.body));
    await waitFor(
      async () => ((await rig.p.api('GET', `/api/v1/coa-extractions/${res.body.id}`, { key: qa.apiKey })).body.stage === 'proposed' ? true : undefined),
      'proposed',
      60_000,
      150,
    );
    const done = await rig.p.api('POST', `/api/v1/coa-extractions/${res.body.id}/reject`, { key: qa.apiKey, body: { reason: 'another lot' } });
    assert.equal(done.status, 200, JSON.stringify(done.body));
    await testEnv().client.workflow.getHandle(res.body.workflowId).result();
    const dir = historiesDir('coa-extraction');
    await saveFixture(join(dir, 'provider-attempts-retried-widened-rejected.json'), await fetchFixture(testEnv().client, res.body.workflowId));
  });
});
