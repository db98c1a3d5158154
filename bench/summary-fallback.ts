/**
 * SOAP summaries against local servers that speak the Anthropic and OpenAI protocols, with the real SDK adapters:
 *  - fallback: Anthropic hangs, OpenAI answers after a fixed latency. Timed from POST /patients/:id/summaries until
 *    the job's stage is 'ready' in Postgres (and until the summary row exists), one request at a time. Each sample
 *    is paired with the same two calls made directly through the adapters (no API, no workflow), the order of the
 *    pair alternating from one sample to the next; ratio = median through the API / median direct. The floor (the
 *    client timeout of the hanging call plus the second provider's latency) is printed beside it.
 *  - throughput: 20 requests at once for 20 patients, Anthropic answering after the same fixed latency, timed until
 *    all 20 are ready; against the same 20 provider calls made at once directly through the adapter, the order of
 *    the two alternating from one round to the next; medians over rounds.
 * Each provider gets one attempt (LLM_MAX_ATTEMPTS=1): a hang retried would cost its timeout again each time.
 * BENCH_SAMPLES (default 15), BENCH_WARMUP (default 2), BENCH_ROUNDS (default 3) and BENCH_LATENCY_MS (default 500)
 * set the fallback samples, the discarded first ones, the throughput rounds and the stubs' latency.
 */
import { performance } from 'node:perf_hooks';
import { randomBytes } from 'node:crypto';
import { LlmError } from '../activities/llm/errors';
import { buildSummaryPrompt } from '../activities/llm/prompt';
import { llmSetupFromConfig, type LlmSetup } from '../activities/llm/setup';
import type { NoteForSummary, SummaryPrompt } from '../activities/llm/types';
import { loadConfig } from '../common/config';
import { durationMs } from '../common/durations';
import { createUser } from '../db/identity';
import { startLlmStub, type LlmStub } from '../test/helpers/llm-stubs';
import { startBenchPlatform, type BenchPlatform } from './lib/bench-platform';
import { benchRun } from './lib/bench-run';

const bench = benchRun('summary-fallback');
const { say, intSetting } = bench;
const check = bench.checkInterrupted;

const SAMPLES = intSetting('BENCH_SAMPLES', 15, 1);
const WARMUP = intSetting('BENCH_WARMUP', 2, 0);
const ROUNDS = intSetting('BENCH_ROUNDS', 3, 1);
const LATENCY_MS = intSetting('BENCH_LATENCY_MS', 500, 1);
const CONCURRENCY = 20;
const TARGET = 1.5;
const KEYS = { anthropic: 'sk-ant-bench-key', openai: 'sk-openai-bench-key' };
// LLM_TIMEOUT is each provider activity's startToClose; the activity gives the HTTP call 2 s less so that it can
// record the outcome before Temporal's own timeout: a hang is given up after 1 s.
const LLM_TIMEOUT = '3s';
const DOB = '1980-05-17';

const NOTES: NoteForSummary[] = [
  {
    noteTime: new Date(Date.now() - 120 * 60_000).toISOString(),
    subjective: 'Chest tightness on exertion for a week. Allergies: penicillin.',
    objective: 'BP 148/92, HR 88. ECG sinus rhythm.',
    assessment: 'Hypertension, poorly controlled. Stable angina.',
    plan: 'Start lisinopril 10 mg daily. Continue aspirin 81 mg. Stress test in 2 weeks.',
  },
  {
    noteTime: new Date(Date.now() - 30 * 60_000).toISOString(),
    subjective: 'Follow-up; tightness less frequent.',
    objective: 'BP 136/84.',
    assessment: 'Hypertension improving.',
    plan: 'Continue lisinopril 10 mg. Recheck in 4 weeks.',
  },
];

interface Timing {
  storedMs: number;
  readyMs: number;
}

async function main(): Promise<void> {
  const stubs: LlmStub[] = [];
  try {
    const anthropic = await startLlmStub('anthropic', { apiKey: KEYS.anthropic, latencyMs: LATENCY_MS, defaultBehaviour: 'hang' });
    stubs.push(anthropic);
    const openai = await startLlmStub('openai', { apiKey: KEYS.openai, latencyMs: LATENCY_MS });
    stubs.push(openai);
    const settings = {
      LLM_PROVIDERS: 'anthropic,openai',
      ANTHROPIC_API_KEY: KEYS.anthropic,
      ANTHROPIC_BASE_URL: anthropic.url,
      OPENAI_API_KEY: KEYS.openai,
      OPENAI_BASE_URL: openai.url,
      LLM_TIMEOUT,
      LLM_MAX_ATTEMPTS: '1',
      // Every sample must meet the hang: an open circuit would skip Anthropic without waiting.
      LLM_CIRCUIT_FAILURES: '1000000',
    };
    // The same adapters the worker builds from the same settings, for the direct calls.
    const llm = llmSetupFromConfig(loadConfig(settings));
    const p = await startBenchPlatform(say, { settings });
    let results;
    try {
      results = await measure(p, llm, anthropic);
    } finally {
      say('stopping the API, the worker and the dev server; dropping the database');
      await p.stop();
    }
    report(results);
  } finally {
    await Promise.all(stubs.map((s) => s.stop()));
  }
}

async function measure(p: BenchPlatform, llm: LlmSetup, anthropic: LlmStub) {
  const { db, baseUrl } = p;
  const { apiKey } = await createUser(db, {
    username: 'bench.clinician',
    printedName: 'Bench Clinician',
    email: 'clinician@bench.test',
    roles: ['clinician'],
  });
  const api = async (method: 'GET' | 'POST', path: string, expect: number, body?: unknown) => {
    const res = await fetch(`${baseUrl}/api/v1${path}`, {
      method,
      headers: { authorization: `Bearer ${apiKey}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const parsed = (await res.json()) as Record<string, unknown>;
    if (res.status !== expect) throw new Error(`${method} ${path} answered ${res.status}: ${JSON.stringify(parsed)}`);
    return parsed;
  };
  const letters = () => [...randomBytes(10)].map((b) => String.fromCharCode(97 + (b % 26))).join('');
  const patient = async (): Promise<string> => {
    const { id } = (await api('POST', '/patients', 201, { givenName: 'Bench', familyName: `Zq${letters()}`, dateOfBirth: DOB })) as {
      id: string;
    };
    for (const note of NOTES) await api('POST', `/patients/${id}/notes`, 201, note);
    return id;
  };
  const request = async (patientId: string): Promise<string> => {
    const { jobId } = (await api('POST', `/patients/${patientId}/summaries`, 202, {})) as { jobId: string };
    return jobId;
  };

  /** Polls Postgres until every job is ready; times are from `t0`. */
  const waitReady = async (jobIds: string[], t0: number, pollMs: number): Promise<Map<string, Timing>> => {
    const stored = new Map<string, number>();
    const done = new Map<string, Timing>();
    const deadline = Date.now() + 60_000;
    while (done.size < jobIds.length) {
      check();
      if (Date.now() > deadline) throw new Error(`summaries not ready within 60 s: ${jobIds.filter((id) => !done.has(id)).join(', ')}`);
      const rows: { workflow_id: string; stage: string; stored: boolean }[] = await db('summary_jobs as j')
        .whereIn(
          'j.workflow_id',
          jobIds.filter((id) => !done.has(id)),
        )
        .select('j.workflow_id', 'j.stage', db.raw('exists (select 1 from summaries s where s.workflow_id = j.workflow_id) as stored'));
      const now = performance.now() - t0;
      for (const row of rows) {
        if (row.stored && !stored.has(row.workflow_id)) stored.set(row.workflow_id, now);
        if (row.stage === 'ready') done.set(row.workflow_id, { storedMs: stored.get(row.workflow_id)!, readyMs: now });
        else if (!['requested', 'generating', 'validating'].includes(row.stage)) throw new Error(`${row.workflow_id} ended ${row.stage}`);
      }
      if (done.size < jobIds.length) await new Promise((r) => setTimeout(r, pollMs));
    }
    return done;
  };
  /** The attempts each job made, as `provider:outcome`, and the recorded latency of each. */
  const attemptsOf = async (jobId: string) =>
    (await db('summary_attempts').where({ workflow_id: jobId }).orderBy('started_at').select('provider', 'outcome', 'latency_ms')) as {
      provider: string;
      outcome: string;
      latency_ms: number;
    }[];

  const prompt: SummaryPrompt = buildSummaryPrompt(NOTES, { dateOfBirth: DOB, sex: null });
  const callOptions = (timeoutMs: number) => ({ maxTokens: 1024, temperature: 0, timeoutMs });
  // Mirrors activities/soap-summary.ts: the call's bound within the activity's startToClose.
  const clientTimeoutMs = Math.max(1000, Math.min(llm.timeoutMs, durationMs(p.config.summary.attempt.timeout) - 2000));
  const floorMs = clientTimeoutMs + LATENCY_MS;

  const fallbackN = WARMUP + SAMPLES;
  const throughputN = ROUNDS * CONCURRENCY;
  say(`creating ${fallbackN + throughputN} patients with two notes each`);
  const fallbackPatients: string[] = [];
  for (let i = 0; i < fallbackN; i++) fallbackPatients.push(await patient());
  const throughputPatients: string[] = [];
  for (let i = 0; i < throughputN; i++) throughputPatients.push(await patient());

  say(
    `fallback: Anthropic hangs (given up after ${clientTimeoutMs} ms), OpenAI answers after ${LATENCY_MS} ms; ` +
      `${WARMUP} warm-up + ${SAMPLES} samples, each paired with the same two calls made directly (order alternating)`,
  );
  const fallback: Timing[] = [];
  const hangRecorded: number[] = [];
  const directFallback: number[] = [];
  for (let i = 0; i < fallbackN; i++) {
    check();
    const throughApi = async () => {
      const t0 = performance.now();
      const jobId = await request(fallbackPatients[i]);
      const timing = (await waitReady([jobId], t0, 10)).get(jobId)!;
      const attempts = await attemptsOf(jobId);
      const trail = attempts.map((a) => `${a.provider}:${a.outcome}`).join(' ');
      if (trail !== 'anthropic:timeout openai:succeeded') throw new Error(`${jobId}: attempts ${trail}, not a timeout then a success`);
      return { timing, attempts };
    };
    const direct = async () => {
      const t1 = performance.now();
      try {
        await llm.providers.anthropic!.generate(prompt, callOptions(clientTimeoutMs));
        throw new Error('the hanging stub answered');
      } catch (err) {
        if (!(err instanceof LlmError && err.kind === 'timeout')) throw err;
      }
      await llm.providers.openai!.generate(prompt, callOptions(clientTimeoutMs));
      return performance.now() - t1;
    };
    let viaApi: Awaited<ReturnType<typeof throughApi>>;
    let directMs: number;
    if (i % 2 === 0) {
      viaApi = await throughApi();
      directMs = await direct();
    } else {
      directMs = await direct();
      viaApi = await throughApi();
    }
    const { timing, attempts } = viaApi;

    if (i < WARMUP) continue;
    fallback.push(timing);
    hangRecorded.push(attempts[0].latency_ms);
    directFallback.push(directMs);
  }
  const hangP50 = median(hangRecorded);
  // The floor assumes the hang costs the client timeout; a shorter recorded attempt would make it wrong.
  if (hangP50 < clientTimeoutMs - 5) throw new Error(`the hanging attempt took ${hangP50} ms, less than the assumed ${clientTimeoutMs} ms`);

  say(
    `throughput: ${ROUNDS} rounds of ${CONCURRENCY} requests at once, Anthropic answering after ${LATENCY_MS} ms, ` +
      'each round paired with the same calls made directly (order alternating)',
  );
  anthropic.setDefault('healthy');
  const answered: number[] = [];
  const workflowRates: number[] = [];
  const directRates: number[] = [];
  const perMinute = (ms: number) => CONCURRENCY / (ms / 60_000);
  for (let r = 0; r < ROUNDS; r++) {
    check();
    const batch = throughputPatients.slice(r * CONCURRENCY, (r + 1) * CONCURRENCY);
    const throughApi = async () => {
      const t0 = performance.now();
      const jobIds = await Promise.all(batch.map(request));
      const answeredMs = performance.now() - t0;
      const timings = await waitReady(jobIds, t0, 20);
      const allMs = Math.max(...[...timings.values()].map((t) => t.readyMs));
      for (const jobId of jobIds) {
        const trail = (await attemptsOf(jobId)).map((a) => `${a.provider}:${a.outcome}`).join(' ');
        if (trail !== 'anthropic:succeeded') throw new Error(`${jobId}: attempts ${trail}, not one success`);
      }
      return { answeredMs, allMs };
    };
    const direct = async () => {
      const t1 = performance.now();
      await Promise.all(batch.map(() => llm.providers.anthropic!.generate(prompt, callOptions(clientTimeoutMs))));
      return performance.now() - t1;
    };
    let viaApi: Awaited<ReturnType<typeof throughApi>>;
    let directMs: number;
    if (r % 2 === 0) {
      viaApi = await throughApi();
      directMs = await direct();
    } else {
      directMs = await direct();
      viaApi = await throughApi();
    }
    const { answeredMs, allMs } = viaApi;
    answered.push(answeredMs);
    workflowRates.push(perMinute(allMs));
    directRates.push(perMinute(directMs));
    say(
      `round ${r + 1}: all ${CONCURRENCY} answered 202 after ${answeredMs.toFixed(0)} ms, ready after ${allMs.toFixed(0)} ms; ` +
        `direct calls ${directMs.toFixed(0)} ms`,
    );
  }

  return { clientTimeoutMs, floorMs, fallback, hangRecorded, directFallback, answered, workflowRates, directRates };
}

function median(samples: number[]): number {
  const sorted = [...samples].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}

const round1 = (n: number) => Math.round(n * 10) / 10;
const round3 = (n: number) => Math.round(n * 1000) / 1000;

function report(r: Awaited<ReturnType<typeof measure>>): void {
  const readyP50 = median(r.fallback.map((t) => t.readyMs));
  const storedP50 = median(r.fallback.map((t) => t.storedMs));
  const directP50 = median(r.directFallback);
  const rateP50 = median(r.workflowRates);
  const directRateP50 = median(r.directRates);
  const ratio = round3(readyP50 / directP50);

  console.log(`\nsummary-fallback: one attempt per provider (a hang retried would cost its timeout once per attempt)`);
  console.log(
    `  fallback, Anthropic hangs, OpenAI ${LATENCY_MS} ms; floor ${r.floorMs} ms = ${r.clientTimeoutMs} ms timeout + ${LATENCY_MS} ms`,
  );
  console.log(`    request → summary stored   p50 ${storedP50.toFixed(0).padStart(6)} ms`);
  console.log(`    request → stage ready      p50 ${readyP50.toFixed(0).padStart(6)} ms  (${ratio}× direct, target ≤ ${TARGET})`);
  console.log(`    same two calls, direct     p50 ${directP50.toFixed(0).padStart(6)} ms  (${round3(directP50 / r.floorMs)}× floor)`);
  console.log(`    hanging attempt, recorded  p50 ${median(r.hangRecorded).toFixed(0).padStart(6)} ms`);
  console.log(`  throughput, ${CONCURRENCY} at once, Anthropic ${LATENCY_MS} ms (${r.workflowRates.length} rounds)`);
  console.log(`    all ${CONCURRENCY} answered 202        p50 ${median(r.answered).toFixed(0).padStart(6)} ms`);
  console.log(`    request → ready            p50 ${rateP50.toFixed(1).padStart(8)} summaries/min`);
  console.log(`    same calls, direct         p50 ${directRateP50.toFixed(1).padStart(8)} summaries/min`);
  console.log(`    workflow / direct              ${round3(rateP50 / directRateP50)}\n`);
  console.log(
    JSON.stringify({
      bench: 'summary-fallback',
      figures: {
        stub_latency_ms: LATENCY_MS,
        client_timeout_ms: r.clientTimeoutMs,
        attempts_per_provider: 1,
        floor_ms: r.floorMs,
        fallback_samples: r.fallback.length,
        fallback_ready_p50_ms: Math.round(readyP50),
        fallback_stored_p50_ms: Math.round(storedP50),
        fallback_direct_p50_ms: Math.round(directP50),
        fallback_ready_vs_floor: round3(readyP50 / r.floorMs),
        hang_attempt_recorded_p50_ms: Math.round(median(r.hangRecorded)),
        concurrency: CONCURRENCY,
        throughput_rounds: r.workflowRates.length,
        throughput_answered_p50_ms: Math.round(median(r.answered)),
        summaries_per_min_p50: round1(rateP50),
        direct_summaries_per_min_p50: round1(directRateP50),
        throughput_vs_direct: round3(rateP50 / directRateP50),
      },
      ratio,
      target: TARGET,
      better: 'lower',
    }),
  );
}

bench.run(main);
