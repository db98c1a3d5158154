import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { healthySummary, type RecordedRequest } from '../helpers/llm-stubs';
import { waitFor } from '../helpers/wait';
import { killHard, spawnWorker } from '../helpers/worker-process';
import { testEnv } from '../setup/env';
import {
  attemptTrail,
  jobUrl,
  KEYS,
  patientWithNotes,
  requestSummary,
  sha256,
  startSummaryRig,
  waitForStage,
  type SummaryRig,
} from './support';

/** What the provider was sent as the user's turn, as the stub reads it to compose its answer. */
function userTextOf(request: RecordedRequest): string {
  const { messages } = request.body as { messages: { role: string; content: string | { text?: string }[] }[] };
  return messages
    .filter((m) => m.role === 'user')
    .map((m) => (typeof m.content === 'string' ? m.content : m.content.map((b) => b.text ?? '').join('')))
    .join('\n');
}

describe('a summary run whose worker is killed with SIGKILL during a provider call', () => {
  let rig: SummaryRig;
  let worker: ChildProcess | undefined;
  /** A second worker on the same task queue, for the test that kills one of two. */
  let second: ChildProcess | undefined;

  // The worker process reads its LLM setup from the environment, as in production, pointed at the rig's stubs.
  const llmEnv = () => ({
    LLM_PROVIDERS: 'anthropic,openai,ollama',
    ANTHROPIC_API_KEY: KEYS.anthropic,
    ANTHROPIC_BASE_URL: rig.stubs.anthropic.url,
    ANTHROPIC_MODEL: 'claude-sonnet-4-5',
    OPENAI_API_KEY: KEYS.openai,
    OPENAI_BASE_URL: rig.stubs.openai.url,
    OPENAI_MODEL: 'gpt-4.1-mini',
    OLLAMA_HOST: rig.stubs.ollama.url,
    OLLAMA_MODEL: 'llama3.1:8b',
    OLLAMA_NUM_CTX: '8192',
    LLM_TIMEOUT: '5s',
    LLM_MAX_TOKENS: '1024',
    LLM_MAX_ATTEMPTS: '3',
    LLM_MAX_RETRY_AFTER: '5s',
    LLM_CIRCUIT_FAILURES: '1000',
    LLM_CIRCUIT_COOLDOWN: '1m',
  });
  const startWorker = async () => {
    worker = await spawnWorker(rig.p.taskQueue, llmEnv());
  };

  before(async () => {
    // A short attempt timeout: the attempt lost with the killed worker times out and is retried soon.
    rig = await startSummaryRig({
      platform: { withWorker: false },
      summary: { attempt: { timeout: '6s', maxAttempts: 3, maxTokens: 1024, maxRetryAfter: '5s' } },
    });
  });
  afterEach(async () => {
    if (worker) await killHard(worker);
    if (second) await killHard(second);
    worker = undefined;
    second = undefined;
  });
  after(() => rig.stop());

  /** Attempts by round that were recorded as successes: never more than one per round. */
  const successesByRound = async (jobId: string) =>
    (
      await testEnv()
        .db('summary_attempts')
        .where({ workflow_id: jobId, outcome: 'succeeded' })
        .groupBy('round')
        .orderBy('round')
        .select('round', testEnv().db.raw('count(*)::int as n'))
    ).map((r: { round: number; n: number }) => `${r.round}:${r.n}`);

  /** The activity's last try as the history records it: its attempt number shows a retry after the kill. */
  const lastTryOf = async (jobId: string, activityType: string) => {
    const history = await testEnv().client.workflow.getHandle(jobId).fetchHistory();
    const scheduled = history.events?.find((e) => e.activityTaskScheduledEventAttributes?.activityType?.name === activityType);
    assert.ok(scheduled, `${activityType} was scheduled`);
    const started = history.events?.find(
      (e) => String(e.activityTaskStartedEventAttributes?.scheduledEventId) === String(scheduled.eventId),
    );
    return started?.activityTaskStartedEventAttributes?.attempt ?? 0;
  };

  const approveAndFinish = async (jobId: string, contentHash: string) => {
    const approved = await rig.p.api('POST', `${jobUrl(jobId)}/review`, {
      key: rig.doc.apiKey,
      body: { decision: 'approve', signature: { password: rig.doc.password, meaning: 'approval', contentHash } },
    });
    assert.equal(approved.status, 200, JSON.stringify(approved.body));
    assert.equal(approved.body.stage, 'approved');
    await waitFor(
      async () => (await testEnv().client.workflow.getHandle(jobId).describe()).status.name === 'COMPLETED',
      `${jobId} completed`,
    );
  };

  it('calls the provider again on a new worker, and stores one summary from one success, which is then approved', async function () {
    this.timeout(180_000);
    const { db } = testEnv();
    await startWorker();
    const patient = await patientWithNotes(rig);
    const sent = rig.stubs.anthropic.count;
    rig.stubs.anthropic.script({ kind: 'healthy', latencyMs: 3000 });
    const res = await requestSummary(rig, patient.id);
    assert.equal(res.status, 202, JSON.stringify(res.body));
    const jobId: string = res.body.jobId;

    await waitFor(() => rig.stubs.anthropic.count > sent, 'the provider to receive the call', 30_000, 10);
    await killHard(worker!);
    await startWorker();

    const job = await waitForStage(rig, jobId, ['ready', 'failed_all_providers'], 90_000);
    assert.equal(job.stage, 'ready', JSON.stringify(job));
    assert.equal(job.provider, 'anthropic');
    assert.equal(rig.stubs.anthropic.count - sent, 2, 'the call lost with the worker was made once more');
    assert.ok((await lastTryOf(jobId, 'summarizeWithAnthropic')) >= 2, 'the activity was retried after the kill');
    assert.deepEqual(attemptTrail(job), ['anthropic:succeeded'], 'the killed call left no attempt behind');
    assert.deepEqual(await successesByRound(jobId), ['1:1']);

    const rows = await db('summaries').where({ workflow_id: jobId });
    assert.equal(rows.length, 1);
    const success = await db('summary_attempts').where({ workflow_id: jobId, outcome: 'succeeded' }).first();
    assert.equal(rows[0].attempt_id, success.id);
    const answered = rig.stubs.anthropic.requests[rig.stubs.anthropic.count - 1];
    assert.equal(rows[0].text, healthySummary(userTextOf(answered)), 'the summary is the answer the provider gave, intact');
    assert.equal(rows[0].content_hash, sha256(rows[0].text));

    await approveAndFinish(jobId, rows[0].content_hash);
    assert.equal((await db('summaries').where({ workflow_id: jobId })).length, 1, 'approval stored no second summary');
  });

  it('reuses the success a killed worker recorded but never reported, without calling the provider again', async function () {
    this.timeout(180_000);
    const { db } = testEnv();
    await startWorker();
    const patient = await patientWithNotes(rig);
    const sent = rig.stubs.anthropic.count;
    rig.stubs.anthropic.script({ kind: 'healthy', latencyMs: 1000 });
    const res = await requestSummary(rig, patient.id);
    assert.equal(res.status, 202, JSON.stringify(res.body));
    const jobId: string = res.body.jobId;

    await waitFor(() => rig.stubs.anthropic.count > sent, 'the provider to receive the call', 30_000, 10);
    // Past the circuit gate now. Holding the circuits table stops the activity at its next step, the circuit's
    // update right after the success is recorded, so the worker dies before the completion can reach the server.
    const hold = await db.transaction();
    let recorded: { id: string };
    try {
      await hold.raw('lock table llm_provider_circuits in exclusive mode');
      recorded = await waitFor(
        () => db('summary_attempts').where({ workflow_id: jobId, outcome: 'succeeded' }).first('id'),
        'the success to be recorded',
        30_000,
        20,
      );
      await killHard(worker!);
    } finally {
      await hold.rollback();
    }
    await startWorker();

    const job = await waitForStage(rig, jobId, ['ready', 'failed_all_providers'], 90_000);
    assert.equal(job.stage, 'ready', JSON.stringify(job));
    assert.ok((await lastTryOf(jobId, 'summarizeWithAnthropic')) >= 2, 'the activity was retried after the kill');
    assert.equal(rig.stubs.anthropic.count - sent, 1, 'the retry reused the recorded answer');
    assert.deepEqual(attemptTrail(job), ['anthropic:succeeded']);
    assert.deepEqual(await successesByRound(jobId), ['1:1']);

    const rows = await db('summaries').where({ workflow_id: jobId });
    assert.equal(rows.length, 1);
    assert.equal(rows[0].attempt_id, recorded.id);
    assert.equal(rows[0].text, healthySummary(userTextOf(rig.stubs.anthropic.requests[sent])));
    assert.equal(rows[0].content_hash, sha256(rows[0].text));

    await approveAndFinish(jobId, rows[0].content_hash);
  });

  it('finishes on the other of two workers when the one holding the provider call is killed, with no restart', async function () {
    this.timeout(180_000);
    const { db } = testEnv();
    const workers = [await spawnWorker(rig.p.taskQueue, llmEnv()), await spawnWorker(rig.p.taskQueue, llmEnv())];
    [worker, second] = workers;
    const patient = await patientWithNotes(rig);
    const sent = rig.stubs.anthropic.requestsFor(patient.visit).length;
    rig.stubs.anthropic.script({ kind: 'healthy', latencyMs: 3000 });
    const res = await requestSummary(rig, patient.id);
    assert.equal(res.status, 202, JSON.stringify(res.body));
    const jobId: string = res.body.jobId;

    await waitFor(() => rig.stubs.anthropic.requestsFor(patient.visit).length > sent, 'the provider to receive the call', 30_000, 10);
    // The worker's identity is <pid>@<host>: the server names the one that holds the activity.
    const holder = await waitFor(async () => {
      const { raw } = await testEnv().client.workflow.getHandle(jobId).describe();
      return raw.pendingActivities?.find((a) => a.activityType?.name === 'summarizeWithAnthropic')?.lastWorkerIdentity || null;
    }, 'the pending provider call and its worker');
    const victim = workers.find((w) => holder.startsWith(`${w.pid}@`));
    assert.ok(victim, `the holder ${holder} is one of the two workers (${workers.map((w) => w.pid).join(', ')})`);
    const survivor = workers.find((w) => w !== victim)!;
    await killHard(victim);

    const job = await waitForStage(rig, jobId, ['ready', 'failed_all_providers'], 90_000);
    assert.equal(job.stage, 'ready', JSON.stringify(job));
    assert.equal(survivor.exitCode, null, 'the other worker kept running and did the work');
    assert.ok((await lastTryOf(jobId, 'summarizeWithAnthropic')) >= 2, 'the activity was retried after the kill');
    assert.deepEqual(attemptTrail(job), ['anthropic:succeeded'], 'the killed call left no attempt behind');
    assert.deepEqual(await successesByRound(jobId), ['1:1']);
    const rows = await db('summaries').where({ workflow_id: jobId });
    assert.equal(rows.length, 1, 'one summary');

    await approveAndFinish(jobId, rows[0].content_hash);
    assert.equal((await db('summaries').where({ workflow_id: jobId })).length, 1, 'approval stored no second summary');
  });
});
