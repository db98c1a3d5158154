import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { llmSetupFromConfig } from '../../activities/llm/setup';
import type { SummarySettings } from '../../api/deps';
import { startLlmStub, type LlmStub, type StubProvider } from '../helpers/llm-stubs';
import { startPlatform, type Platform, type PlatformOptions } from '../helpers/platform';
import { makeUsers, type TestUser } from '../helpers/users';
import { waitFor } from '../helpers/wait';
import { testEnv } from '../setup/env';
import { addNote, createPatient, marker, minutesAgo } from '../patients/support';

export { addNote, createPatient, marker, minutesAgo };

export const KEYS = { anthropic: 'sk-ant-test-key', openai: 'sk-openai-test-key' };

/** The LLM setup against the local provider stubs: a 2 s client timeout, two tries per provider, circuits that trip only when asked. */
export function stubLlmSetup(stubs: Record<StubProvider, LlmStub>, options: { order?: string; circuitFailures?: number } = {}) {
  return llmSetupFromConfig({
    LLM_PROVIDERS: options.order ?? 'anthropic,openai,ollama',
    ANTHROPIC_API_KEY: KEYS.anthropic,
    ANTHROPIC_BASE_URL: stubs.anthropic.url,
    ANTHROPIC_MODEL: 'claude-sonnet-4-5',
    OPENAI_API_KEY: KEYS.openai,
    OPENAI_BASE_URL: stubs.openai.url,
    OPENAI_MODEL: 'gpt-4.1-mini',
    OLLAMA_HOST: stubs.ollama.url,
    OLLAMA_MODEL: 'llama3.1:8b',
    OLLAMA_NUM_CTX: 8192,
    LLM_TIMEOUT: '2s',
    OLLAMA_TIMEOUT: '2s',
    LLM_MAX_TOKENS: 1024,
    LLM_MAX_ATTEMPTS: 2,
    LLM_MAX_RETRY_AFTER: '5s',
    LLM_CIRCUIT_FAILURES: options.circuitFailures ?? 1000,
    LLM_CIRCUIT_COOLDOWN: '1m',
  });
}

export interface SummaryRig {
  p: Platform;
  stubs: Record<StubProvider, LlmStub>;
  doc: TestUser;
  stop(): Promise<void>;
}

/** The three providers' local servers, speaking their protocols. */
export async function startLlmStubs(): Promise<Record<StubProvider, LlmStub>> {
  return {
    anthropic: await startLlmStub('anthropic', { apiKey: KEYS.anthropic }),
    openai: await startLlmStub('openai', { apiKey: KEYS.openai }),
    ollama: await startLlmStub('ollama'),
  };
}

/**
 * The platform with the three LLM providers configured against local servers that speak their protocols. The client
 * gives up on a silent provider after two seconds so hangs are quick to test; the circuit breaker trips only when a
 * test asks.
 */
export async function startSummaryRig(
  options: { summary?: Partial<SummarySettings>; circuitFailures?: number; order?: string; platform?: PlatformOptions } = {},
): Promise<SummaryRig> {
  const stubs = await startLlmStubs();
  const llm = stubLlmSetup(stubs, { order: options.order, circuitFailures: options.circuitFailures });
  const summary: SummarySettings = {
    providers: llm.order,
    extractiveFallback: true,
    // The client gives up on a provider after LLM_TIMEOUT (2 s), which is what the hang tests see; the activity's own
    // bound is far above it, so a loaded machine never times an attempt out in Temporal while it is still running
    // (that attempt would then be tried again beside the one still recording its outcome).
    attempt: { timeout: '30s', maxAttempts: 2, maxTokens: 1024, maxRetryAfter: '5s' },
    maxRounds: 3,
    maxWaitMs: 15_000,
    dailyTokenBudget: 1_000_000_000,
    ...options.summary,
  };
  await testEnv().db('llm_provider_circuits').delete();
  const p = await startPlatform({ ...options.platform, activityDeps: { llm }, apiConfig: { summary } });
  const { doc } = await makeUsers({ doc: ['clinician'] });
  return {
    p,
    stubs,
    doc,
    async stop() {
      await p.stop();
      await Promise.all(Object.values(stubs).map((s) => s.stop()));
      await testEnv().db('llm_provider_circuits').delete();
    },
  };
}

export const jobUrl = (jobId: string) => `/api/v1/summary-jobs/${encodeURIComponent(jobId)}`;
export const sha256 = (text: string) => createHash('sha256').update(text).digest('hex');

/**
 * A patient with two notes naming medications, an allergy and problems, and identifiers that must not be sent. The
 * first note names a visit code of its own, and the rig's provider stubs give their scripted answers only to prompts
 * holding it (`visit`), so a late request from an earlier job cannot take an answer scripted for this one.
 */
export async function patientWithNotes(rig: SummaryRig, extra: { subjective?: string; plan?: string } = {}) {
  const visit = `Visit code V${randomBytes(4).toString('hex').toUpperCase()}.`;
  for (const stub of Object.values(rig.stubs)) stub.focusOn(visit);
  const patient = await createPatient(rig.p, rig.doc, {
    mrn: `MRN${Date.now()}`,
    phone: '+1 617 555 0142',
    address: '12 Elm Street, Springfield',
  });
  await addNote(rig.p, rig.doc, patient.id, {
    subjective: extra.subjective ?? 'Chest tightness on exertion for a week. Allergies: penicillin.',
    objective: `BP 148/92, HR 88. ECG sinus rhythm. ${visit}`,
    assessment: 'Hypertension, poorly controlled. Stable angina.',
    plan: extra.plan ?? 'Start lisinopril 10 mg daily. Continue aspirin 81 mg. Stress test in 2 weeks.',
    noteTime: minutesAgo(120),
  });
  await addNote(rig.p, rig.doc, patient.id, {
    subjective: 'Follow-up; tightness less frequent.',
    objective: 'BP 136/84.',
    assessment: 'Hypertension improving.',
    plan: 'Continue lisinopril 10 mg. Recheck in 4 weeks.',
    noteTime: minutesAgo(30),
  });
  return Object.assign(patient, { visit });
}

export async function requestSummary(rig: SummaryRig, patientId: string, body: Record<string, unknown> = {}, query = '') {
  return rig.p.api('POST', `/api/v1/patients/${patientId}/summaries${query}`, { key: rig.doc.apiKey, body });
}

export async function jobOf(rig: SummaryRig, jobId: string) {
  const res = await rig.p.api('GET', jobUrl(jobId), { key: rig.doc.apiKey });
  assert.equal(res.status, 200, JSON.stringify(res.body));
  return res.body;
}

/** Waits until the job reaches one of the stages, and returns its view. */
export async function waitForStage(rig: SummaryRig, jobId: string, stages: string[], timeoutMs = 60_000) {
  return waitFor(
    async () => {
      const job = await jobOf(rig, jobId);
      return stages.includes(job.stage) ? job : undefined;
    },
    `${jobId} to reach ${stages.join(' or ')}`,
    timeoutMs,
    150,
  );
}

/** Requests a summary and waits for it to await review; returns the job and the summary. */
export async function readySummary(rig: SummaryRig, patientId: string, body: Record<string, unknown> = {}) {
  const res = await requestSummary(rig, patientId, body);
  assert.equal(res.status, 202, JSON.stringify(res.body));
  const job = await waitForStage(rig, res.body.jobId, ['ready', 'failed_all_providers']);
  assert.equal(job.stage, 'ready', JSON.stringify(job));
  const summary = await rig.p.api('GET', `${jobUrl(res.body.jobId)}/summary`, { key: rig.doc.apiKey });
  assert.equal(summary.status, 200, JSON.stringify(summary.body));
  return { jobId: res.body.jobId as string, job, summary: summary.body };
}

/** Attempts as recorded for a job, as `provider:outcome` strings in order. */
export const attemptTrail = (job: { attempts: { provider: string; outcome: string }[] }) =>
  job.attempts.map((a) => `${a.provider}:${a.outcome}`);
