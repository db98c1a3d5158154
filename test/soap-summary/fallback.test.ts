import assert from 'node:assert/strict';
import { makeUsers, type TestUser } from '../helpers/users';
import { waitFor } from '../helpers/wait';
import { testEnv } from '../setup/env';
import { attemptTrail, patientWithNotes, readySummary, requestSummary, startSummaryRig, waitForStage, type SummaryRig } from './support';

/** Each row of the error table, as a run lives through it: which provider is asked again, which is passed over. */
describe('summaries falling back from provider to provider', () => {
  let rig: SummaryRig;
  let operator: TestUser;
  before(async () => {
    rig = await startSummaryRig();
    ({ operator } = await makeUsers({ operator: ['it_operator'] }));
  });
  after(() => rig.stop());

  /** The requests one patient's job made to a provider (a late request from an earlier job is not counted). */
  const requestsTo = (provider: 'anthropic' | 'openai' | 'ollama', patient: { visit: string }) => rig.stubs[provider].requestsFor(patient.visit);

  it('retries the same provider after a 429, waiting as Retry-After says', async () => {
    const patient = await patientWithNotes(rig);
    rig.stubs.anthropic.script({ kind: 'rate_limited', retryAfter: 1 });
    const { job } = await readySummary(rig, patient.id);
    assert.deepEqual(attemptTrail(job), ['anthropic:rate_limited', 'anthropic:succeeded']);
    const [first, second] = requestsTo('anthropic', patient);
    assert.ok(second.at - first.at >= 1000, `asked again after ${second.at - first.at} ms`);
  });

  it('retries the same provider when it is overloaded (529) or fails (500), then moves on when it keeps failing', async () => {
    const patient = await patientWithNotes(rig);
    rig.stubs.anthropic.script('overloaded', 'server_error');
    const { job } = await readySummary(rig, patient.id);
    assert.deepEqual(attemptTrail(job), ['anthropic:overloaded', 'anthropic:server_error', 'openai:succeeded']);
    assert.equal(job.provider, 'openai');
  });

  it('gives up on a provider that hangs after its timeout, and the next one answers', async () => {
    const patient = await patientWithNotes(rig);
    rig.stubs.anthropic.script('hang', 'hang');
    const { job } = await readySummary(rig, patient.id);
    assert.deepEqual(attemptTrail(job), ['anthropic:timeout', 'anthropic:timeout', 'openai:succeeded']);
  });

  it('retries a provider that answered with a broken body', async () => {
    const patient = await patientWithNotes(rig);
    rig.stubs.openai.script('invalid_json');
    const { job } = await readySummary(rig, patient.id, { providers: ['openai'] });
    assert.deepEqual(attemptTrail(job), ['openai:invalid_response', 'openai:succeeded']);
  });

  it('moves on at once when the quota is exhausted or the key is refused, and alerts the operators', async () => {
    const patient = await patientWithNotes(rig);
    rig.stubs.anthropic.script('quota_exhausted');
    rig.stubs.openai.script('unauthorized');
    const { job } = await readySummary(rig, patient.id);
    assert.deepEqual(attemptTrail(job), ['anthropic:quota_exhausted', 'openai:auth', 'ollama:succeeded']);
    assert.equal(requestsTo('anthropic', patient).length, 1);
    assert.equal(requestsTo('openai', patient).length, 1);
    const alerts = await waitFor(async () => {
      const rows = await testEnv().db('notifications').where({ user_id: operator.actor.userId }).pluck('title');
      return rows.length >= 2 ? rows : undefined;
    }, 'two operator alerts');
    assert.ok(alerts.some((t: string) => /anthropic/i.test(t)));
    assert.ok(alerts.some((t: string) => /openai/i.test(t)));
  });

  it('moves on at once after a content refusal', async () => {
    const patient = await patientWithNotes(rig);
    rig.stubs.anthropic.script('refusal');
    rig.stubs.openai.script('refusal');
    const { job } = await readySummary(rig, patient.id);
    assert.deepEqual(attemptTrail(job), ['anthropic:refusal', 'openai:refusal', 'ollama:succeeded']);
  });

  it('never stores truncated output: asks once more with twice the budget, then the next provider', async () => {
    const patient = await patientWithNotes(rig);
    rig.stubs.anthropic.script('truncated');
    const widened = await readySummary(rig, patient.id);
    assert.deepEqual(attemptTrail(widened.job), ['anthropic:truncated', 'anthropic:succeeded']);
    const budgets = requestsTo('anthropic', patient).map((r) => (r.body as { max_tokens: number }).max_tokens);
    assert.deepEqual(budgets, [1024, 2048]);

    const other = await patientWithNotes(rig);
    rig.stubs.anthropic.script('truncated', 'truncated');
    const next = await readySummary(rig, other.id);
    assert.deepEqual(attemptTrail(next.job), ['anthropic:truncated', 'anthropic:truncated', 'openai:succeeded']);
    const stored = await testEnv().db('summary_attempts').where({ workflow_id: next.jobId, outcome: 'truncated' }).pluck('candidate_text');
    assert.deepEqual(stored, [null, null]);
  });

  it('passes over Ollama when it silently cut the prompt, and always sends num_ctx', async () => {
    const patient = await patientWithNotes(rig);
    rig.stubs.ollama.script('prompt_truncated');
    const { job } = await readySummary(rig, patient.id, { providers: ['ollama', 'openai'] });
    assert.deepEqual(attemptTrail(job), ['ollama:prompt_truncated', 'openai:succeeded']);
    const [sent] = requestsTo('ollama', patient);
    assert.equal((sent.body as { options: { num_ctx: number } }).options.num_ctx, 8192);
  });

  it('counts a summary that fails validation as a failed attempt and moves on', async () => {
    const patient = await patientWithNotes(rig);
    rig.stubs.anthropic.script({ kind: 'healthy', text: '## Subjective\nFeels fine.\n## Plan\nNothing.' });
    const { job, summary } = await readySummary(rig, patient.id);
    assert.deepEqual(attemptTrail(job), ['anthropic:validation_failed', 'openai:succeeded']);
    assert.equal(summary.provenance.provider, 'openai');
  });

  it('fails the job when every provider is down and the extractive fallback is off; asking again later starts afresh', async () => {
    const strict = await startSummaryRig({ summary: { extractiveFallback: false } });
    try {
      const patient = await patientWithNotes(strict);
      for (const stub of Object.values(strict.stubs)) stub.setDefault('unauthorized');
      const res = await requestSummary(strict, patient.id);
      const job = await waitForStage(strict, res.body.jobId, ['failed_all_providers']);
      assert.deepEqual(attemptTrail(job), ['anthropic:auth', 'openai:auth', 'ollama:auth']);
      const run = testEnv().client.workflow.getHandle(res.body.jobId);
      await waitFor(async () => (await run.describe()).status.name === 'FAILED', 'the run to fail');

      for (const stub of Object.values(strict.stubs)) stub.setDefault('healthy');
      const again = await requestSummary(strict, patient.id);
      assert.equal(again.status, 202, JSON.stringify(again.body));
      assert.equal(again.body.jobId, res.body.jobId);
      const ready = await waitForStage(strict, res.body.jobId, ['ready']);
      assert.equal(ready.provider, 'anthropic');
      assert.equal(ready.round, 2);
    } finally {
      await strict.stop();
    }
  });

  it('opens the circuit of a provider that keeps failing, so the next jobs skip it without calling', async () => {
    const tripping = await startSummaryRig({ circuitFailures: 2 });
    try {
      tripping.stubs.anthropic.setDefault('server_error');
      const first = await readySummary(tripping, (await patientWithNotes(tripping)).id);
      assert.deepEqual(attemptTrail(first.job), ['anthropic:server_error', 'anthropic:server_error', 'openai:succeeded']);
      const calls = tripping.stubs.anthropic.count;
      const second = await readySummary(tripping, (await patientWithNotes(tripping)).id);
      assert.deepEqual(attemptTrail(second.job), ['anthropic:circuit_open', 'openai:succeeded']);
      assert.equal(tripping.stubs.anthropic.count, calls, 'no call to a provider whose circuit is open');
      const circuit = await testEnv().db('llm_provider_circuits').where({ provider: 'anthropic' }).first();
      assert.equal(circuit.state, 'open');
    } finally {
      await tripping.stop();
    }
  });
});
