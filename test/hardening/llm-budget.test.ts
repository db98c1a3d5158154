import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { startPlatform, testApiConfig, type Platform } from '../helpers/platform';
import { makeUsers, type TestUser } from '../helpers/users';
import { testEnv } from '../setup/env';
import { createPatient, patientUrl } from '../patients/support';

describe('the daily LLM budget of a clinician', () => {
  let p: Platform;
  before(async () => {
    const summary = { ...testApiConfig('unused').summary, dailyTokenBudget: 1000 };
    p = await startPlatform({ withWorker: false, apiConfig: { summary } });
  });
  after(() => p.stop());

  /** A finished run the clinician asked for today, whose provider attempt used `tokens`. */
  async function spent(clinician: TestUser, patientId: string, tokens: number): Promise<void> {
    const workflowId = `soap-summary:${patientId}:${randomBytes(8).toString('hex')}`;
    await testEnv().db('summary_jobs').insert({
      workflow_id: workflowId,
      patient_id: patientId,
      notes_hash: 'f'.repeat(64),
      note_ids: [],
      note_hashes: [],
      stage: 'rejected',
      providers: ['anthropic'],
      requested_by: clinician.actor.userId,
    });
    await testEnv().db('summary_attempts').insert({
      idempotency_key: `${workflowId}:1`,
      workflow_id: workflowId,
      round: 1,
      provider: 'anthropic',
      outcome: 'succeeded',
      input_tokens: tokens - 100,
      output_tokens: 100,
      started_at: new Date(),
    });
  }

  it('refuses a new run with 429 naming the budget once the day’s tokens are spent; the extractive summarizer stays open', async () => {
    const { doctor, colleague } = await makeUsers({ doctor: ['clinician'], colleague: ['clinician'] });
    const patient = await createPatient(p, doctor);
    await spent(doctor, patient.id, 999);
    // Under the budget: the request goes on (and is refused later for a reason of its own: no notes yet).
    const under = await p.api('POST', `${patientUrl(patient.id)}/summaries`, { key: doctor.apiKey, body: {} });
    assert.equal(under.status, 422, JSON.stringify(under.body));
    assert.equal(under.body.type, 'urn:labflow:problem:no-notes');

    await spent(doctor, patient.id, 500);
    const refused = await p.api('POST', `${patientUrl(patient.id)}/summaries`, { key: doctor.apiKey, body: {} });
    assert.equal(refused.status, 429, JSON.stringify(refused.body));
    assert.equal(refused.body.type, 'urn:labflow:problem:llm-budget-exhausted');
    assert.equal(refused.body.budget, 1000);
    assert.equal(refused.body.spent, 1499);
    assert.match(refused.body.detail, /LLM_DAILY_TOKEN_BUDGET/);
    assert.ok(Number(refused.headers.get('retry-after')) >= 1);
    const jobs = await testEnv().db('summary_jobs').where({ patient_id: patient.id }).count<{ count: number }[]>('* as count');
    assert.equal(Number(jobs[0].count), 2, 'no run was started');

    const extractive = await p.api('POST', `${patientUrl(patient.id)}/summaries`, { key: doctor.apiKey, body: { providers: ['extractive'] } });
    assert.equal(extractive.body.type, 'urn:labflow:problem:no-notes', 'the extractive summarizer costs no tokens');
    // The budget is the clinician's own.
    const other = await p.api('POST', `${patientUrl(patient.id)}/summaries`, { key: colleague.apiKey, body: {} });
    assert.notEqual(other.status, 429);
  });
});
