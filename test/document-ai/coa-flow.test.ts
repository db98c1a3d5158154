import assert from 'node:assert/strict';
import { makeUsers, type TestUser } from '../helpers/users';
import { waitFor } from '../helpers/wait';
import { testEnv } from '../setup/env';
import { startSummaryRig, type SummaryRig } from '../soap-summary/support';
import { certificate } from './support';

/** A run per certificate, through the API, with the provider stubs of the summary's rig. */
describe('CoA extraction runs through the API', () => {
  let rig: SummaryRig;
  let qa: TestUser;
  let tech: TestUser;
  before(async () => {
    rig = await startSummaryRig();
    ({ qa, tech } = await makeUsers({ qa: ['qa_manager'], tech: ['lab_technician'] }));
  });
  after(() => rig.stop());

  const start = (text: unknown, key = qa.apiKey) => rig.p.api('POST', '/api/v1/coa-extractions', { key, body: { text } });
  const proposed = (id: string) =>
    waitFor(
      async () => {
        const res = await rig.p.api('GET', `/api/v1/coa-extractions/${id}`, { key: qa.apiKey });
        return res.body.stage === 'proposed' ? res.body : undefined;
      },
      `${id} proposed`,
      60_000,
      150,
    );

  it('refuses bad input and other roles with problem+json, writing nothing', async () => {
    const empty = await start('   ');
    assert.equal(empty.status, 400);
    assert.equal(empty.body.type?.endsWith('validation'), true, JSON.stringify(empty.body));
    const wrongRole = await start(certificate(), tech.apiKey);
    assert.equal(wrongRole.status, 403);
    const unknown = await rig.p.api('GET', '/api/v1/coa-extractions/00000000-0000-4000-8000-000000000000', { key: qa.apiKey });
    assert.equal(unknown.status, 404);
  });

  it('all providers failing: the rule-based proposal; a correction not in the certificate is refused; confirmed with corrections recorded', async () => {
    const text = certificate();
    const lot = /Lot No\.: (\S+)/.exec(text)![1];
    rig.stubs.anthropic.script('unauthorized');
    rig.stubs.openai.script('quota_exhausted');
    rig.stubs.ollama.script('prompt_truncated');
    const res = await start(text);
    assert.equal(res.status, 202, JSON.stringify(res.body));
    const view = await proposed(res.body.id);
    assert.equal(view.provenance.source, 'rule_based');
    assert.equal(view.provenance.aiGenerated, false);
    assert.deepEqual(
      view.provenance.attempts.map((a: { provider: string; outcome: string }) => `${a.provider}:${a.outcome}`),
      ['anthropic:auth', 'openai:quota_exhausted', 'ollama:prompt_truncated', 'rule_based:succeeded'],
    );
    assert.equal(view.proposal.lotNumber, lot);
    assert.deepEqual(view.issues, []);

    const invented = { ...view.proposal, expiryDate: '2030-01-01' };
    const refused = await rig.p.api('POST', `/api/v1/coa-extractions/${res.body.id}/confirm`, { key: qa.apiKey, body: { fields: invented } });
    assert.equal(refused.status, 422, JSON.stringify(refused.body));
    assert.deepEqual(refused.body.issues, [{ field: 'expiryDate', code: 'not_in_source' }]);

    const byTech = await rig.p.api('POST', `/api/v1/coa-extractions/${res.body.id}/confirm`, { key: tech.apiKey, body: { fields: view.proposal } });
    assert.equal(byTech.status, 403);

    // The person corrects the product to the certificate's fuller wording and drops a parameter.
    const corrected = { ...view.proposal, product: 'Sodium chloride, ACS grade', parameters: view.proposal.parameters.slice(0, 2) };
    const confirmed = await rig.p.api('POST', `/api/v1/coa-extractions/${res.body.id}/confirm`, { key: qa.apiKey, body: { fields: corrected } });
    assert.equal(confirmed.status, 200, JSON.stringify(confirmed.body));
    assert.equal(confirmed.body.stage, 'confirmed');
    assert.equal(confirmed.body.confirmed.by, qa.actor.username);
    assert.deepEqual(
      confirmed.body.confirmed.corrections.map((c: { field: string }) => c.field),
      ['parameters'],
    );
    const row = await testEnv().db('coa_extractions').where({ id: res.body.id }).first();
    assert.equal(row.stage, 'confirmed');
    assert.equal(row.confirmed_fields.parameters.length, 2);
    const audit = await testEnv().db('audit_events').where({ entity_type: 'coa_extraction', entity_id: res.body.id, action: 'coa.confirmed' });
    assert.equal(audit.length, 1);
    assert.equal(audit[0].actor, qa.actor.username);

    const again = await rig.p.api('POST', `/api/v1/coa-extractions/${res.body.id}/confirm`, { key: qa.apiKey, body: { fields: corrected } });
    assert.equal(again.status, 409);
  });

  it('a model proposal with a value absent from the text is refused with its reasons; the next provider’s is proposed', async () => {
    const text = certificate();
    const lot = /Lot No\.: (\S+)/.exec(text)![1];
    const answer = (expiryDate: string) =>
      JSON.stringify({
        supplier: 'Acme Reagents GmbH',
        product: 'Sodium chloride, ACS grade',
        lotNumber: lot,
        expiryDate,
        parameters: [{ name: 'Assay', result: '99.7 %', specification: '>= 99.0 %' }],
      });
    rig.stubs.anthropic.script({ kind: 'healthy', text: answer('2031-01-01') });
    rig.stubs.openai.script({ kind: 'healthy', text: answer('2028-03-31') });
    const res = await start(text);
    assert.equal(res.status, 202, JSON.stringify(res.body));
    const view = await proposed(res.body.id);
    const [first, second] = view.provenance.attempts;
    assert.equal(`${first.provider}:${first.outcome}`, 'anthropic:validation_failed');
    assert.deepEqual(first.issues, [{ field: 'expiryDate', code: 'not_in_source' }]);
    assert.equal(`${second.provider}:${second.outcome}`, 'openai:succeeded');
    assert.equal(view.provenance.source, 'openai');
    assert.equal(view.provenance.aiGenerated, true);
    assert.match(view.provenance.promptHash, /^[0-9a-f]{64}$/);
    assert.equal(view.proposal.expiryDate, '2028-03-31');
  });
});
