import assert from 'node:assert/strict';
import { workflowIds } from '../../common/ids';
import { registerSamples } from '../../db/sample-intake';
import { makeUsers, type TestUser } from '../helpers/users';
import { waitFor } from '../helpers/wait';
import { testEnv } from '../setup/env';
import { startSummaryRig, type SummaryRig } from '../soap-summary/support';
import { certificate, goodAnswer } from './support';

interface AttemptRow {
  provider: string;
  try: number;
  max_tokens: number;
  outcome: string;
}

/** Each provider its own activity, retried and budgeted as the summary's, every call its own attempt row. */
describe('CoA extraction: retries, output budget and attempt rows, and what a decision records on the inspection', () => {
  let rig: SummaryRig;
  let qa: TestUser;
  let tech: TestUser;
  before(async () => {
    rig = await startSummaryRig();
    ({ qa, tech } = await makeUsers({ qa: ['qa_manager'], tech: ['lab_technician'] }));
  });
  after(() => rig.stop());

  /** A certificate whose lot only this test's prompts hold: the stubs answer as scripted to those alone. */
  function focused(): string {
    const text = certificate();
    for (const stub of Object.values(rig.stubs)) stub.focusOn(/Lot No\.: (\S+)/.exec(text)![1]);
    return text;
  }
  const view = (id: string) => rig.p.api('GET', `/api/v1/coa-extractions/${id}`, { key: qa.apiKey });
  async function proposed(text: string, sampleId?: string) {
    const res = await rig.p.api('POST', '/api/v1/coa-extractions', { key: qa.apiKey, body: { text, ...(sampleId ? { sampleId } : {}) } });
    assert.equal(res.status, 202, JSON.stringify(res.body));
    return waitFor(async () => ((await view(res.body.id)).body.stage === 'proposed' ? (await view(res.body.id)).body : undefined), 'proposed', 60_000, 150);
  }
  const rows = async (id: string): Promise<AttemptRow[]> =>
    testEnv().db('coa_extraction_attempts').where({ extraction_id: id }).orderBy([{ column: 'recorded_at' }, { column: 'try' }]);
  const trail = (attempts: AttemptRow[]) => attempts.map((a) => `${a.provider}#${a.try}:${a.outcome}@${a.max_tokens}`);

  async function incomingSample(): Promise<{ id: string; accession: string }> {
    const [sample] = await testEnv().db.transaction((trx) =>
      registerSamples(trx, [{ sampleType: 'INCOMING', priority: 'routine', requestedTests: ['IQC_COA'], externalId: `PR-${Date.now()}:1` }], {
        source: 'erp',
        submitterId: null,
        actor: 'system:erp-sync',
        actorId: null,
        workflowIdOf: workflowIds.sampleIntake,
      }),
    );
    return { id: sample.id, accession: sample.accession };
  }
  const inspection = (sampleId: string, key = tech.apiKey) => rig.p.api('GET', `/api/v1/incoming-inspections/${sampleId}`, { key });

  it('retries a provider on a retryable failure (5xx) and proposes its answer, each try its own attempt row', async () => {
    const text = focused();
    rig.stubs.anthropic.script('server_error', { kind: 'healthy', text: goodAnswer(text) });
    const body = await proposed(text);
    assert.equal(body.provenance.source, 'anthropic');
    assert.deepEqual(trail(await rows(body.id)), ['anthropic#1:server_error@1024', 'anthropic#2:succeeded@1024']);
    assert.deepEqual(
      body.provenance.attempts.map((a: { provider: string; outcome: string; try: number }) => `${a.provider}#${a.try}:${a.outcome}`),
      ['anthropic#1:server_error', 'anthropic#2:succeeded'],
    );
    assert.equal(rig.stubs.anthropic.requests.filter((r) => r.rawBody.includes(body.proposal.lotNumber)).length, 2);
  });

  it('asks again with twice the output budget after a truncated answer', async () => {
    const text = focused();
    rig.stubs.anthropic.script('truncated', { kind: 'healthy', text: goodAnswer(text) });
    const body = await proposed(text);
    assert.equal(body.provenance.source, 'anthropic');
    assert.deepEqual(trail(await rows(body.id)), ['anthropic#1:truncated@1024', 'anthropic#1:succeeded@2048']);
    const sent = rig.stubs.anthropic.requests.filter((r) => r.rawBody.includes(body.proposal.lotNumber));
    assert.deepEqual(
      sent.map((r) => (r.body as { max_tokens: number }).max_tokens),
      [1024, 2048],
    );
  });

  it('moves on at once from a failure retrying cannot mend, and after retries run out; rules last, every call recorded', async () => {
    const text = focused();
    rig.stubs.anthropic.script('unauthorized');
    rig.stubs.openai.script('rate_limited', 'rate_limited');
    rig.stubs.ollama.script('truncated', 'truncated');
    const body = await proposed(text);
    assert.equal(body.provenance.source, 'rule_based');
    assert.deepEqual(trail(await rows(body.id)), [
      'anthropic#1:auth@1024',
      'openai#1:rate_limited@1024',
      'openai#2:rate_limited@1024',
      'ollama#1:truncated@1024',
      'ollama#1:truncated@2048',
    ]);
    assert.equal(body.provenance.attempts.at(-1).provider, 'rule_based');
  });

  it('a confirmation becomes the incoming inspection’s recorded values, naming the extraction, who confirmed it and when', async () => {
    const sample = await incomingSample();
    const text = focused();
    rig.stubs.anthropic.script({ kind: 'healthy', text: goodAnswer(text) });
    const before = await inspection(sample.id);
    assert.equal(before.status, 200, JSON.stringify(before.body));
    assert.equal(before.body.recorded, null);
    const body = await proposed(text, sample.id);
    const fields = { ...body.proposal, parameters: body.proposal.parameters.slice(0, 2) };
    const done = await rig.p.api('POST', `/api/v1/coa-extractions/${body.id}/confirm`, { key: qa.apiKey, body: { fields } });
    assert.equal(done.status, 200, JSON.stringify(done.body));

    const after = await inspection(sample.id);
    assert.equal(after.status, 200, JSON.stringify(after.body));
    const { recorded } = after.body;
    assert.equal(recorded.version, 1);
    assert.equal(recorded.lotNumber, fields.lotNumber);
    assert.deepEqual(recorded.parameters, fields.parameters);
    assert.equal(recorded.source.coaExtractionId, body.id);
    assert.equal(recorded.source.confirmedBy, qa.actor.username);
    assert.equal(recorded.source.confirmedAt, done.body.confirmed.at);
    assert.match(recorded.source.text, new RegExp(`^from CoA extraction ${body.id}, confirmed by .*${qa.actor.username}.* at ${done.body.confirmed.at}$`));
    const audit = await testEnv().db('audit_events').where({ entity_type: 'sample', entity_id: sample.accession, action: 'incoming_inspection.recorded' });
    assert.equal(audit.length, 1);
    assert.equal(audit[0].details.coaExtractionId, body.id);
  });

  it('a rejected extraction records nothing on the inspection; a second decision is refused', async () => {
    const sample = await incomingSample();
    const text = focused();
    rig.stubs.anthropic.script({ kind: 'healthy', text: goodAnswer(text) });
    const body = await proposed(text, sample.id);
    const noReason = await rig.p.api('POST', `/api/v1/coa-extractions/${body.id}/reject`, { key: qa.apiKey, body: { reason: ' ' } });
    assert.equal(noReason.status, 400);
    const byTech = await rig.p.api('POST', `/api/v1/coa-extractions/${body.id}/reject`, { key: tech.apiKey, body: { reason: 'wrong lot' } });
    assert.equal(byTech.status, 403);
    const rejected = await rig.p.api('POST', `/api/v1/coa-extractions/${body.id}/reject`, {
      key: qa.apiKey,
      body: { reason: 'the certificate is for another lot' },
    });
    assert.equal(rejected.status, 200, JSON.stringify(rejected.body));
    assert.equal(rejected.body.stage, 'rejected');
    assert.equal(rejected.body.rejected.by, qa.actor.username);
    assert.equal(rejected.body.confirmed, null);
    const confirm = await rig.p.api('POST', `/api/v1/coa-extractions/${body.id}/confirm`, { key: qa.apiKey, body: { fields: body.proposal } });
    assert.equal(confirm.status, 409);
    await testEnv().client.workflow.getHandle(body.workflowId).result();

    const after = await inspection(sample.id);
    assert.equal(after.body.recorded, null);
    assert.deepEqual(after.body.versions, []);
    assert.equal(await testEnv().db('incoming_inspection_records').where({ sample_id: sample.id }).first(), undefined);
    assert.equal((await testEnv().db('coa_extractions').where({ id: body.id }).first()).confirmed_fields, null);
  });

  it('answers 404 for a sample that is not an incoming inspection, and 403 to roles that may not read one', async () => {
    const unknown = await inspection('00000000-0000-4000-8000-000000000000');
    assert.equal(unknown.status, 404);
    const { doc } = rig;
    const sample = await incomingSample();
    assert.equal((await inspection(sample.id, doc.apiKey)).status, 403);
  });
});
